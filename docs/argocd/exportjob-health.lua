-- Argo CD resource health for ExportJob (training.agentcore.io/v1alpha1).
-- Argo CD runs this with the object in the global `obj` and expects {status, message} back.
-- Written for Lua 5.1 (Argo CD's gopher-lua); no library beyond the base functions.
--   Pending, Running, waiting for the operator  -> Progressing
--   Completed                                   -> Healthy
--   Cancelled                                   -> Healthy   (the requested stop was reached)
--   Failed                                      -> Degraded
local hs = {}
local status = obj.status or {}
local metadata = obj.metadata or {}
local phase = status.phase

if phase == "Completed" then
  hs.status = "Healthy"
  local output = status.output or {}
  local detail = ""
  if output.rowCount ~= nil then
    detail = detail .. ", " .. tostring(output.rowCount) .. " rows"
  end
  if output.fileName ~= nil then
    detail = detail .. ", " .. output.fileName
  end
  hs.message = "Export completed" .. detail
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Export failed: " .. (status.error or "no details")
  return hs
end
if phase == "Cancelled" then
  hs.status = "Healthy"
  hs.message = "Export cancelled"
  return hs
end
if phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to accept the export"
  return hs
end
if metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(metadata.generation)
  return hs
end
if phase == "Pending" then
  hs.status = "Progressing"
  if status.positionInQueue ~= nil and status.positionInQueue > 0 then
    hs.message = "Pending: " .. tostring(status.positionInQueue) .. " export(s) ahead"
  else
    hs.message = "Pending"
  end
  return hs
end
if phase == "Running" then
  hs.status = "Progressing"
  hs.message = "Generating the export"
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(phase)
return hs

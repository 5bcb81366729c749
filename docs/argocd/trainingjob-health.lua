-- Argo CD resource health for TrainingJob (training.agentcore.io/v1alpha1).
-- Argo CD runs this with the object in the global `obj` and expects {status, message} back.
-- Written for Lua 5.1 (Argo CD's gopher-lua); no library beyond the base functions.
--   Queued, Running, waiting for the operator   -> Progressing
--   Completed                                   -> Healthy
--   Cancelled (spec.cancel asked for it)        -> Healthy   (the declared state was reached)
--   Failed (incl. BudgetExceeded)               -> Degraded
--   spec.suspend and the trainer has stopped    -> Suspended (Progressing while it checkpoints)
local hs = {}
local spec = obj.spec or {}
local status = obj.status or {}
local metadata = obj.metadata or {}

local function condition(kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function progress()
  local current = status.currentIteration or 0
  local total = status.totalIterations or (spec.config and spec.config.nIterations)
  if total == nil then
    return ""
  end
  return " (iteration " .. tostring(current) .. "/" .. tostring(total) .. ")"
end

local function explain(default)
  local text = status.message or default
  if status.reason ~= nil and status.reason ~= "" then
    return status.reason .. ": " .. text
  end
  return text
end

local phase = status.phase

if phase == "Completed" then
  hs.status = "Healthy"
  hs.message = "Training completed" .. progress()
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = explain("training failed") .. progress()
  return hs
end
if phase == "Cancelled" then
  hs.status = "Healthy"
  local reason = (status.cancellation and status.cancellation.reason) or status.message or "cancelled"
  hs.message = "Cancelled: " .. reason .. progress()
  return hs
end

if spec.suspend then
  local suspended = condition("Suspended")
  if phase == nil or (suspended ~= nil and suspended.status == "True") then
    hs.status = "Suspended"
    hs.message = "Suspended" .. progress()
  else
    hs.status = "Progressing"
    hs.message = "Suspending: waiting for the trainer to checkpoint and stop" .. progress()
  end
  return hs
end

if phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to accept the job"
  return hs
end
if metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(metadata.generation)
  return hs
end
if phase == "Queued" then
  hs.status = "Progressing"
  hs.message = "Queued" .. progress()
  return hs
end
if phase == "Running" then
  hs.status = "Progressing"
  local pct = ""
  if status.progressPercent ~= nil then
    pct = ", " .. tostring(status.progressPercent) .. "%"
  end
  local cost = ""
  if status.costUsd ~= nil then
    cost = ", $" .. tostring(status.costUsd) .. " spent"
  end
  hs.message = "Running" .. progress() .. pct .. cost
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(phase)
return hs

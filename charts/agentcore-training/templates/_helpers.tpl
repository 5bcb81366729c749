{{/*
Names. Kubernetes names are at most 63 characters (DNS labels); suffixes are kept by truncating
the prefix, not the end.
*/}}
{{- define "agentcore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentcore.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agentcore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "agentcore.labels" -}}
helm.sh/chart: {{ include "agentcore.chart" . }}
{{ include "agentcore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentcore
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "agentcore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentcore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Per-component labels: include with (dict "ctx" $ "component" "operator"). */}}
{{- define "agentcore.componentLabels" -}}
{{ include "agentcore.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "agentcore.componentSelectorLabels" -}}
{{ include "agentcore.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Images: repository[:tag][@digest]; the tag defaults to the chart's appVersion. */}}
{{- define "agentcore.imageRef" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "agentcore.image" -}}
{{- include "agentcore.imageRef" (dict "ctx" . "image" .Values.image) -}}
{{- end }}

{{- define "agentcore.trainerImage" -}}
{{- include "agentcore.imageRef" (dict "ctx" . "image" .Values.trainer.image) -}}
{{- end }}

{{- define "agentcore.exporterImage" -}}
{{- if .Values.exports.image.repository -}}
{{- include "agentcore.imageRef" (dict "ctx" . "image" .Values.exports.image) -}}
{{- else -}}
{{- include "agentcore.trainerImage" . -}}
{{- end -}}
{{- end }}

{{/* Environment variables read from the chart's ConfigMap: include with (dict "ctx" $ "keys" (list ...)). */}}
{{- define "agentcore.configEnv" -}}
{{- $config := printf "%s-config" (include "agentcore.fullname" .ctx) -}}
{{- range .keys }}
- name: {{ . }}
  valueFrom:
    configMapKeyRef:
      name: {{ $config }}
      key: {{ . }}
{{- end }}
{{- end }}

{{- define "agentcore.exportEnvKeys" -}}
AGENTCORE_PLATFORM_NAMESPACE AGENTCORE_EXPORT_MAX_CONCURRENT AGENTCORE_EXPORT_RETENTION_SECONDS AGENTCORE_EXPORT_SWEEP_SECONDS AGENTCORE_EXPORT_BACKOFF_LIMIT AGENTCORE_EXPORT_DEADLINE_SECONDS
{{- end }}

{{/* Service account names. */}}
{{- define "agentcore.operatorServiceAccount" -}}
{{- if .Values.serviceAccounts.operator.create -}}
{{- default (printf "%s-operator" (include "agentcore.fullname" .)) .Values.serviceAccounts.operator.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccounts.operator.name -}}
{{- end -}}
{{- end }}

{{- define "agentcore.apiServiceAccount" -}}
{{- if .Values.serviceAccounts.api.create -}}
{{- default (printf "%s-api" (include "agentcore.fullname" .)) .Values.serviceAccounts.api.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccounts.api.name -}}
{{- end -}}
{{- end }}

{{/* Namespaces the operator watches in namespaced mode (default: the release namespace). */}}
{{- define "agentcore.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespaced" -}}
{{- if .Values.rbac.namespaces -}}
{{- join "," .Values.rbac.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Secret names and keys: the chart's own Secret unless an existing one is referenced. */}}
{{- define "agentcore.secretName" -}}
{{- printf "%s-secrets" (include "agentcore.fullname" .) -}}
{{- end }}

{{- define "agentcore.databaseSecretName" -}}
{{- default (include "agentcore.secretName" .) .Values.database.existingSecret -}}
{{- end }}

{{- define "agentcore.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end }}

{{- define "agentcore.s3SecretName" -}}
{{- default (include "agentcore.secretName" .) .Values.objectStore.s3.existingSecret -}}
{{- end }}

{{- define "agentcore.s3HasCredentials" -}}
{{- if or .Values.objectStore.s3.existingSecret .Values.objectStore.s3.accessKeyId -}}true{{- end -}}
{{- end }}

{{- define "agentcore.s3AccessKeyKey" -}}
{{- if .Values.objectStore.s3.existingSecret -}}{{ .Values.objectStore.s3.accessKeyIdKey }}{{- else -}}s3-access-key-id{{- end -}}
{{- end }}

{{- define "agentcore.s3SecretKeyKey" -}}
{{- if .Values.objectStore.s3.existingSecret -}}{{ .Values.objectStore.s3.secretAccessKeyKey }}{{- else -}}s3-secret-access-key{{- end -}}
{{- end }}

{{- define "agentcore.jwtSecretName" -}}
{{- default (include "agentcore.secretName" .) .Values.auth.jwt.existingSecret -}}
{{- end }}

{{- define "agentcore.jwtSecretKey" -}}
{{- if .Values.auth.jwt.existingSecret -}}{{ .Values.auth.jwt.existingSecretKey }}{{- else -}}jwt-secret{{- end -}}
{{- end }}

{{/* Whether the API server uses an HS256 secret: given, referenced, or generated (no RS256 keys). */}}
{{- define "agentcore.jwtHS256" -}}
{{- if or .Values.auth.jwt.secret .Values.auth.jwt.existingSecret (not (or .Values.auth.jwt.publicKey .Values.auth.jwt.jwks)) -}}true{{- end -}}
{{- end }}

{{/*
The HS256 secret stored in the chart's Secret: the given one, else the one already in the cluster
(so upgrades keep tokens valid), else a new random one. `helm template` (Argo CD) cannot look up
the cluster: set auth.jwt.secret or auth.jwt.existingSecret there.
*/}}
{{- define "agentcore.jwtSecretValue" -}}
{{- if .Values.auth.jwt.secret -}}
{{- .Values.auth.jwt.secret -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "agentcore.secretName" .) -}}
{{- if and $existing $existing.data (index $existing.data "jwt-secret") -}}
{{- index $existing.data "jwt-secret" | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
Environment shared by the operator, the API server and the migration Job: database, object store.
*/}}
{{- define "agentcore.storageEnv" -}}
- name: AGENTCORE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "agentcore.databaseSecretName" . }}
      key: {{ include "agentcore.databaseSecretKey" . }}
{{- end }}

{{- define "agentcore.objectStoreEnv" -}}
- name: AGENTCORE_OBJECT_STORE
  valueFrom:
    configMapKeyRef:
      name: {{ include "agentcore.fullname" . }}-config
      key: AGENTCORE_OBJECT_STORE
{{- if .Values.objectStore.s3.endpoint }}
- name: AGENTCORE_S3_ENDPOINT
  valueFrom:
    configMapKeyRef:
      name: {{ include "agentcore.fullname" . }}-config
      key: AGENTCORE_S3_ENDPOINT
{{- end }}
- name: AWS_REGION
  valueFrom:
    configMapKeyRef:
      name: {{ include "agentcore.fullname" . }}-config
      key: AWS_REGION
{{- if include "agentcore.s3HasCredentials" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "agentcore.s3SecretName" . }}
      key: {{ include "agentcore.s3AccessKeyKey" . }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "agentcore.s3SecretName" . }}
      key: {{ include "agentcore.s3SecretKeyKey" . }}
{{- end }}
{{- end }}

{{/* Settings a read-only root filesystem needs: a writable /tmp and HOME. */}}
{{- define "agentcore.runtimeEnv" -}}
- name: HOME
  value: /tmp
- name: TMPDIR
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{/* Fail early, with a message, on values that cannot work. */}}
{{- define "agentcore.validate" -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) -}}
{{- fail "database.url or database.existingSecret is required (PostgreSQL URL, e.g. postgresql://user:pass@host:5432/agentcore)" -}}
{{- end -}}
{{- if not .Values.objectStore.url -}}
{{- fail "objectStore.url is required (s3://bucket/prefix, or file:///dir for single-node testing)" -}}
{{- end -}}
{{- if and .Values.objectStore.s3.accessKeyId (not .Values.objectStore.s3.secretAccessKey) -}}
{{- fail "objectStore.s3.secretAccessKey is required with objectStore.s3.accessKeyId" -}}
{{- end -}}
{{- if and .Values.auth.jwt.secret (lt (len .Values.auth.jwt.secret) 32) -}}
{{- fail "auth.jwt.secret must be at least 32 bytes (HS256 key size)" -}}
{{- end -}}
{{- if and .Values.api.enabled (eq .Values.rbac.scope "namespaced") (gt (len .Values.rbac.namespaces) 1) -}}
{{- fail "rbac.scope=namespaced with more than one namespace: the API server watches a single namespace; install one release per namespace or use rbac.scope=cluster" -}}
{{- end -}}
{{- with .Values.operator.leaderElection -}}
{{- if not (gt (float64 .leaseDurationSeconds) (float64 .renewDeadlineSeconds)) -}}
{{- fail "operator.leaderElection.renewDeadlineSeconds must be less than leaseDurationSeconds (client-go's rule: the leader stops before a standby may take over)" -}}
{{- end -}}
{{- if not (gt (float64 .renewDeadlineSeconds) (mulf 1.2 (float64 .retryPeriodSeconds))) -}}
{{- fail "operator.leaderElection.renewDeadlineSeconds must be greater than 1.2 x retryPeriodSeconds (client-go's rule)" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* api.rateLimits as AGENTCORE_RATE_LIMITS: METHOD=LIMIT[/WINDOW],... in key order. */}}
{{- define "agentcore.rateLimits" -}}
{{- $items := list -}}
{{- range $method, $limit := .Values.api.rateLimits -}}
{{- $items = append $items (printf "%s=%v" $method $limit) -}}
{{- end -}}
{{- join "," $items -}}
{{- end }}

{{/*
RBAC rules, shared by the cluster-wide (ClusterRole) and namespaced (Role) modes.

The operator creates, per TrainingJob/ExportJob, a ServiceAccount, a Role and a RoleBinding that
let the trainer/exporter pod read its own job and its data source and patch its own status.
Kubernetes forbids granting permissions one does not hold (RBAC escalation prevention), so the
operator holds those itself: get on its jobs, get/patch/update on their status, list of
TrainingJobs and batch Jobs (report exports), get on configmaps and secrets (data sources and
redaction rules; it reads them itself to validate a job), and creates the headless Service of a
TrainingJob with several workers (the ranks' DNS names). It deletes expired ExportJobs, and
creates the per-namespace export pseudonym key Secret. It never lists or watches Secrets.
*/}}
{{- define "agentcore.operatorRules" -}}
- apiGroups: ["training.agentcore.io"]
  resources: ["trainingjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["training.agentcore.io"]
  resources: ["exportjobs"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["training.agentcore.io"]
  resources: ["trainingjobs/status", "exportjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
The API server: creates, reads and cancels the job resources (JSON-RPC and the Exports REST
API; DELETE /exports removes an ExportJob); lists export Jobs (queue position) and the
redaction-rule ConfigMaps (label agentcore redaction rules). It never reads Secrets.
*/}}
{{- define "agentcore.apiRules" -}}
- apiGroups: ["training.agentcore.io"]
  resources: ["trainingjobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["training.agentcore.io"]
  resources: ["exportjobs"]
  # export-full and set-creator: the admission policy's verbs (templates/admission-policy.yaml); the
  # API server checks its callers' tokens for both itself.
  verbs: ["get", "list", "watch", "create", "patch", "delete", "export-full", "set-creator"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "get"]
# The ingestion endpoint: a trainer's service account names its TrainingJob (ownerReference), and
# the server reads that job's ConfigMap data sources for it. Never Secrets: this server faces
# tenants, so a TrainingJob whose data is a secretKeyRef is refused at GET datasets (422).
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get"]
{{- end }}

{{/*
Where trainer pods reach the ingestion endpoint: trainer.ingestUrl, else the API Service.
*/}}
{{- define "agentcore.ingestUrl" -}}
{{- if .Values.trainer.ingestUrl -}}
{{- .Values.trainer.ingestUrl -}}
{{- else -}}
http://{{ include "agentcore.fullname" . }}-api.{{ .Release.Namespace }}.svc:{{ .Values.api.service.port }}
{{- end -}}
{{- end }}

{{/*
Rolls the pods when a value behind the chart's Secret changes. Hashes the inputs, not the rendered
Secret: a generated JWT secret would otherwise change the hash on every render.
*/}}
{{- define "agentcore.secretChecksum" -}}
{{- $inputs := dict "db" .Values.database "s3" .Values.objectStore.s3 "jwt" .Values.auth.jwt -}}
{{- toJson $inputs | sha256sum -}}
{{- end }}

{{/* NetworkPolicy egress rules both components need: the Kubernetes API server and DNS. */}}
{{- define "agentcore.egressApiServerAndDNS" -}}
{{- $eg := .Values.networkPolicy.egress -}}
- ports:
  {{- range $eg.kubeApiServerPorts }}
  - port: {{ . }}
    protocol: TCP
  {{- end }}
  {{- with $eg.kubeApiServer }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
  - port: 53
    protocol: UDP
  - port: 53
    protocol: TCP
{{- end }}

{{/* The full-export approval key (exports/approval.py): its Secret and key. */}}
{{- define "agentcore.approvalSecretName" -}}
{{- default (include "agentcore.secretName" .) .Values.admissionPolicy.approvalKey.existingSecret -}}
{{- end }}

{{- define "agentcore.approvalSecretKey" -}}
{{- if .Values.admissionPolicy.approvalKey.existingSecret -}}{{ .Values.admissionPolicy.approvalKey.existingSecretKey }}{{- else -}}export-approval-key{{- end -}}
{{- end }}

{{/* Whether the ValidatingAdmissionPolicy is rendered; without it the operator requires approvals. */}}
{{- define "agentcore.admissionPolicyOn" -}}
{{- if and .Values.admissionPolicy.enabled (eq .Values.rbac.scope "cluster") -}}true{{- end -}}
{{- end }}

{{/* The generated approval key: the one in the cluster (kept across upgrades), else a new one. */}}
{{- define "agentcore.approvalKeyValue" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "agentcore.secretName" .) -}}
{{- if and $existing $existing.data (index $existing.data "export-approval-key") -}}
{{- index $existing.data "export-approval-key" | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 -}}
{{- end -}}
{{- end }}

{{/* Env of the operator and the API server: the approval key (both sign or check with it). */}}
{{- define "agentcore.approvalEnv" -}}
- name: AGENTCORE_EXPORT_APPROVAL_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "agentcore.approvalSecretName" . }}
      key: {{ include "agentcore.approvalSecretKey" . }}
{{- end }}

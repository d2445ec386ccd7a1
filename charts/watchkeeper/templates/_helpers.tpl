{{/* Chart name, overridable. */}}
{{- define "watchkeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name used as the prefix of every resource: the release name, plus the chart name
unless the release name already contains it. */}}
{{- define "watchkeeper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the controller pods; never change them across upgrades. */}}
{{- define "watchkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "watchkeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "watchkeeper.labels" -}}
{{ include "watchkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: watchkeeper
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "watchkeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "watchkeeper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "watchkeeper.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The namespace the controller watches in namespace scope. */}}
{{- define "watchkeeper.watchNamespace" -}}
{{- default .Release.Namespace .Values.rbac.watchNamespace -}}
{{- end -}}

{{- define "watchkeeper.leaseName" -}}
{{- default (include "watchkeeper.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The permissions the controller needs on the objects it watches, shared by the
cluster-wide ClusterRole and the one-namespace Role so the two modes cannot drift apart. */}}
{{- define "watchkeeper.watchRules" -}}
# The five watchkeeper kinds: read and watch them, add finalizers (patch/update).
- apiGroups: ["watchkeeper.dev"]
  resources: ["healthmonitors", "cronjobspecs", "backuppolicies", "maintenancewindows", "failoverplans"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Their status, written by server-side apply.
- apiGroups: ["watchkeeper.dev"]
  resources: ["healthmonitors/status", "cronjobspecs/status", "backuppolicies/status", "maintenancewindows/status", "failoverplans/status"]
  verbs: ["get", "patch", "update"]
# Owner references with blockOwnerDeletion on child objects need update on the owner's
# finalizers where the OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: ["watchkeeper.dev"]
  resources: ["healthmonitors/finalizers", "cronjobspecs/finalizers", "backuppolicies/finalizers", "maintenancewindows/finalizers", "failoverplans/finalizers"]
  verbs: ["update"]
# An Event on every condition transition, through either Events API.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# CronJobSpec becomes a CronJob; backups, verifications, maintenance tasks and "run now" are Jobs.
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The results of Jobs the operator created: the agents' termination messages are in their Pods.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# BackupPolicy agents run under a ServiceAccount of their own (no API token mounted).
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Secrets are only read where a resource references them (tokens, connection strings); never listed.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Maintenance mode and AI-provider switches set a ConfigMap key and restore it afterwards.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "patch"]
# Remediation and failover steps roll back, patch and scale workloads.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "replicasets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch", "update"]
{{- end -}}

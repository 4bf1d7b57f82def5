{{- define "vitess-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vitess-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vitess-operator.labels" -}}
app.kubernetes.io/name: {{ include "vitess-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vitess-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vitess-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vitess-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vitess-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vitess-operator.watchNamespace" -}}
{{- default .Release.Namespace .Values.watch.namespace -}}
{{- end -}}

{{/*
The operator's permissions: the same rules as config/rbac/role.yaml, i.e. src/k8s/rbac.rs RULES
(e2e/tests/install.rs checks the rendered Role grants exactly those). Leases are granted
separately, in the release namespace where the Lease lives.
*/}}
{{- define "vitess-operator.rules" -}}
- apiGroups: [planetscale.com]
  resources: [vitessclusters]
  verbs: [list, watch]
- apiGroups: [planetscale.com]
  resources: [vitesscells, vitessshards, vitessbackupstorages, vitessbackupschedules]
  verbs: [create, delete, list, patch, watch]
- apiGroups: [planetscale.com]
  resources: [vitesskeyspaces]
  verbs: [create, delete, get, list, patch, watch]
- apiGroups: [planetscale.com]
  resources: [etcdlockservers]
  verbs: [create, list, patch, watch]
- apiGroups: [planetscale.com]
  resources:
    - vitessclusters/status
    - vitesscells/status
    - vitesskeyspaces/status
    - vitessshards/status
    - etcdlockservers/status
  verbs: [patch]
- apiGroups: [""]
  resources: [services]
  verbs: [create, delete, list, patch, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [create, delete, get, list, patch, watch]
- apiGroups: [planetscale.com]
  resources: [vitessbackups]
  verbs: [create, delete, get, list, patch, watch]
- apiGroups: [planetscale.com]
  resources:
    - vitessbackupstorages/status
    - vitessbackups/status
    - vitessbackupschedules/status
  verbs: [patch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create, list, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, get, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [create, delete, list, patch, watch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [delete, list]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, delete, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [create, delete, list, patch, watch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [create, delete, list, patch, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{- define "vitess-operator.leaseRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create, get, update]
{{- end -}}

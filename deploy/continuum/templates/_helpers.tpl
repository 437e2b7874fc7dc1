{{/* The release's name for an object of `component` (serving, mlflow). */}}
{{- define "continuum.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; the selector labels are the last two. */}}
{{- define "continuum.labels" -}}
app.kubernetes.io/part-of: continuum
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{ include "continuum.selector" . }}
{{- end -}}

{{- define "continuum.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .component }}
{{- end -}}

{{/* MLflow's address for the sidecar: this chart's MLflow, or the one the values name. */}}
{{- define "continuum.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
http://{{ include "continuum.name" (dict "root" . "component" "mlflow") }}:{{ .Values.mlflow.port }}
{{- else -}}
{{ required "continuum.mlflowTrackingUri: set MLflow's address, or mlflow.enabled=true" .Values.continuum.mlflowTrackingUri }}
{{- end -}}
{{- end -}}

{{/* The S3 settings every Continuum container reads (the lake; MLflow's artifacts). */}}
{{- define "continuum.s3Env" -}}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.continuum.awsRegion | quote }}
{{- with .Values.continuum.s3CredentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . }}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: AWS_SECRET_ACCESS_KEY}}
{{- end }}
{{- end -}}

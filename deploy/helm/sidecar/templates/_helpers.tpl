{{- define "sidecar.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sidecar.labels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "sidecar.selector" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The grace period covers the drain and the app's stop (docs/kubernetes.md). */}}
{{- define "sidecar.grace" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add .Values.sidecar.drain.delaySeconds .Values.sidecar.drain.timeoutSeconds .Values.app.stopTimeoutSeconds 5 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* sidecar.yaml, from the values. */}}
{{- define "sidecar.config" -}}
admin:
  address: 127.0.0.1:9901
watch: true
{{- if .Values.sidecar.accessLog }}
access_log:
  path: stdout
{{- end }}
drain:
  delay: {{ .Values.sidecar.drain.delaySeconds }}s
  timeout: {{ .Values.sidecar.drain.timeoutSeconds }}s
{{- with .Values.sidecar.sync }}
sync:
{{ toYaml . | indent 2 }}
{{- end }}
listeners:
  - name: inbound
    address: 0.0.0.0:{{ .Values.sidecar.inboundPort }}
    routes:
      - match: { prefix: / }
        cluster: app
  - name: status
    address: 0.0.0.0:{{ .Values.sidecar.statusPort }}
    direction: outbound
    access_log: false
    routes:
      - match: { path: /ready }
        cluster: admin
      - match: { path: /healthz }
        cluster: admin
      - match: { path: /metrics }
        cluster: admin
clusters:
  - name: app
    endpoints: [ 127.0.0.1:{{ .Values.app.port }} ]
  - name: admin
    endpoints: [ 127.0.0.1:9901 ]
{{- with .Values.sidecar.extraConfig }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The Tollgate image reference: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "tollgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels Helm users expect, on every object's metadata (not on selectors, which never change). */}}
{{- define "tollgate.chartLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}, app.kubernetes.io/managed-by: {{ .Release.Service | quote }}, app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* Refuses settings that cannot work, at install time rather than at the first pod. */}}
{{- define "tollgate.validate" -}}
{{- if not (has .Values.sidecarMode (list "native" "containers")) -}}
{{- fail (printf "sidecarMode must be native or containers, not %q" .Values.sidecarMode) -}}
{{- end -}}
{{- if and (eq .Values.sidecarMode "native") (semverCompare "<1.29-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "native sidecars need Kubernetes 1.29 or newer and this cluster is %s: install with --set sidecarMode=containers" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end -}}

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

{{/* NATS settings that cannot work; the control plane's stream replicas follow nats.replicas. */}}
{{- define "tollgate.natsValidate" -}}
{{- if not (has (int .Values.nats.replicas) (list 1 3 5)) -}}
{{- fail (printf "nats.replicas must be 1, 3 or 5 (JetStream replicas of the streams and buckets follow it), not %v" .Values.nats.replicas) -}}
{{- end -}}
{{- if not (has .Values.nats.antiAffinity (list "preferred" "required")) -}}
{{- fail (printf "nats.antiAffinity must be preferred or required, not %q" .Values.nats.antiAffinity) -}}
{{- end -}}
{{- end -}}

{{/* Every NATS server's client URL, comma-separated: clients connect to any one that answers. */}}
{{- define "tollgate.natsSeeds" -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.nats.replicas) -}}
{{- $urls = append $urls (printf "tls://tollgate-nats-%d.tollgate-nats-headless.%s.svc:4222" $i $.Release.Namespace) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

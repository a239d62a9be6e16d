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
{{- include "tollgate.natsRegionValidate" . -}}
{{- end -}}

{{/* Multi-region values (nats.region and the gateway settings): all or nothing, and well formed,
because each ends up in nats.conf or the control plane's args. */}}
{{- define "tollgate.natsRegionValidate" -}}
{{- $n := .Values.nats -}}
{{- $regionRe := "^[A-Za-z0-9][A-Za-z0-9-]{0,31}$" -}}
{{- if not $n.region -}}
{{- if or $n.gatewayAdvertise $n.gateways $n.homeRegion $n.budgetRegions -}}
{{- fail "nats.gatewayAdvertise, nats.gateways, nats.homeRegion and nats.budgetRegions need nats.region (this release's region): without it the chart renders one region" -}}
{{- end -}}
{{- else -}}
{{- if not (regexMatch $regionRe (toString $n.region)) -}}
{{- fail (printf "nats.region %q is not a region name (1-32 letters, digits or \"-\")" (toString $n.region)) -}}
{{- end -}}
{{- if eq (int $n.replicas) 1 -}}
{{- fail "nats.region joins this region's NATS cluster to the others: set nats.replicas to 3 or 5" -}}
{{- end -}}
{{- /* DNS names only: the regions check each other's certificate against the name they dial, and
`nats-certs --gateway-dns` puts DNS names (not IP addresses) on it. */}}
{{- $hostPort := "[a-z0-9.-]*[a-z-][a-z0-9.-]*:[0-9]{1,5}" -}}
{{- if not (regexMatch (printf "^%s$" $hostPort) (toString $n.gatewayAdvertise)) -}}
{{- fail (printf "nats.gatewayAdvertise %q must be HOST:PORT, HOST the DNS name the other regions dial for region %s (on the server certificate: nats-certs --gateway-dns HOST)" (toString $n.gatewayAdvertise) $n.region) -}}
{{- end -}}
{{- if not $n.gateways -}}
{{- fail (printf "nats.gateways must list every other region ({name, urls}) for region %s" $n.region) -}}
{{- end -}}
{{- $seen := list $n.region -}}
{{- range $g := $n.gateways -}}
{{- if not (kindIs "map" $g) -}}
{{- fail (printf "nats.gateways: each entry is {name, urls}, not %v" $g) -}}
{{- end -}}
{{- if not (regexMatch $regionRe (toString $g.name)) -}}
{{- fail (printf "nats.gateways: name %q is not a region name (1-32 letters, digits or \"-\")" (toString $g.name)) -}}
{{- end -}}
{{- if has $g.name $seen -}}
{{- fail (printf "nats.gateways: region %s is listed twice, or is this release's own region" $g.name) -}}
{{- end -}}
{{- $seen = append $seen $g.name -}}
{{- if or (not (kindIs "slice" $g.urls)) (not $g.urls) -}}
{{- fail (printf "nats.gateways: region %s needs urls, a list of nats://HOST:PORT" $g.name) -}}
{{- end -}}
{{- range $u := $g.urls -}}
{{- if not (regexMatch (printf "^nats://%s$" $hostPort) (toString $u)) -}}
{{- fail (printf "nats.gateways: region %s: url %q is not nats://HOST:PORT with HOST a DNS name (the name on that region's server certificate)" $g.name (toString $u)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not (has $n.homeRegion $seen) -}}
{{- fail (printf "nats.homeRegion %q must be nats.region or one of nats.gateways (%s), and the same in every region" (toString $n.homeRegion) (join ", " $seen)) -}}
{{- end -}}
{{- if not (kindIs "slice" (default (list) $n.budgetRegions)) -}}
{{- fail (printf "nats.budgetRegions must be a list of region names, not %v" $n.budgetRegions) -}}
{{- end -}}
{{- $budgetSeen := list -}}
{{- range $r := $n.budgetRegions -}}
{{- if not (has (toString $r) $seen) -}}
{{- fail (printf "nats.budgetRegions: %q is not a region of this mesh (nats.region or one of nats.gateways: %s)" (toString $r) (join ", " $seen)) -}}
{{- end -}}
{{- if has $r $budgetSeen -}}
{{- fail (printf "nats.budgetRegions: region %s is listed twice" $r) -}}
{{- end -}}
{{- $budgetSeen = append $budgetSeen $r -}}
{{- end -}}
{{- if not $n.gatewayAllowedCIDRs -}}
{{- fail "nats.gatewayAllowedCIDRs must list the addresses allowed to reach the gateway port (the other regions' egress)" -}}
{{- end -}}
{{- range $c := $n.gatewayAllowedCIDRs -}}
{{- if not (regexMatch "^[0-9A-Fa-f.:]+/[0-9]{1,3}$" (toString $c)) -}}
{{- fail (printf "nats.gatewayAllowedCIDRs: %q is not a CIDR (ADDRESS/BITS)" (toString $c)) -}}
{{- end -}}
{{- end -}}
{{- if not (has $n.gatewayService.type (list "LoadBalancer" "NodePort" "ClusterIP")) -}}
{{- fail (printf "nats.gatewayService.type must be LoadBalancer, NodePort or ClusterIP, not %q" (toString $n.gatewayService.type)) -}}
{{- end -}}
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

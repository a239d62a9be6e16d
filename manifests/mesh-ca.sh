#!/usr/bin/env bash
# The mesh CA for a cluster install: makes a CA and the control plane's certificate (its SPIFFE ID
# spiffe://TD/ns/NS/sa/tollgate-controlplane for xDS, and the Service's DNS names for the
# workload-certificate endpoint), then stores
#   Secret NS/tollgate-mesh-ca           ca.crt, ca.key  (the control plane signs workload certificates)
#   Secret NS/tollgate-controlplane-tls  tls.crt, tls.key
#   ConfigMap tollgate-mesh-ca           ca.crt, in NS and in every --inject-namespace (injected pods
#                                        check the control plane with it)
# Run it before or after `kubectl apply -k manifests/base`; run it with --inject-namespace for
# every namespace you label tollgate.dev/inject=enabled. An existing CA is kept (pass --new-ca to
# replace it, which invalidates every workload certificate issued so far).
#
#   manifests/mesh-ca.sh --inject-namespace shop --inject-namespace billing
#   manifests/mesh-ca.sh --out DIR     # only write ca.crt, ca.key, tls.crt, tls.key into DIR
#   options: --namespace NS (default tollgate-system), --trust-domain TD (default tollgate.local),
#            --days N (control plane certificate, default 365), --new-ca
set -euo pipefail

NAMESPACE=tollgate-system
TRUST_DOMAIN=tollgate.local
SERVICE=tollgate-controlplane
DAYS=365
OUT=""
NEW_CA=""
INJECT=()

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --namespace) NAMESPACE="$2"; shift 2 ;;
    --trust-domain) TRUST_DOMAIN="$2"; shift 2 ;;
    --days) DAYS="$2"; shift 2 ;;
    --inject-namespace) INJECT+=("$2"); shift 2 ;;
    --new-ca) NEW_CA=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mesh-ca.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "mesh-ca.sh: openssl is required" >&2; exit 1; }
if [ -z "$OUT" ]; then
  command -v kubectl >/dev/null || { echo "mesh-ca.sh: kubectl is required (or use --out DIR)" >&2; exit 1; }
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
HOST="$SERVICE.$NAMESPACE.svc"

# Keep the CA that is installed: replacing it would orphan every pod's certificate.
if [ -z "$OUT" ] && [ -z "$NEW_CA" ] && kubectl -n "$NAMESPACE" get secret tollgate-mesh-ca >/dev/null 2>&1; then
  kubectl -n "$NAMESPACE" get secret tollgate-mesh-ca -o 'jsonpath={.data.ca\.crt}' | base64 -d > "$WORK/ca.crt"
  kubectl -n "$NAMESPACE" get secret tollgate-mesh-ca -o 'jsonpath={.data.ca\.key}' | base64 -d > "$WORK/ca.key"
  echo "keeping the mesh CA in Secret $NAMESPACE/tollgate-mesh-ca"
else
  # PKCS#8 EC P-256, the form the control plane signs with.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$WORK/ca.key" -sha256 -days 3650 -subj "/CN=Tollgate mesh CA ($TRUST_DOMAIN)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$WORK/ca.crt" 2>/dev/null
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/tls.key" 2>/dev/null
openssl req -new -key "$WORK/tls.key" -subj "/CN=$SERVICE" -out "$WORK/tls.csr" 2>/dev/null
cat > "$WORK/ext.cnf" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = URI:spiffe://$TRUST_DOMAIN/ns/$NAMESPACE/sa/$SERVICE, DNS:$HOST, DNS:$HOST.cluster.local, DNS:$SERVICE.$NAMESPACE
EXT
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days "$DAYS" -sha256 -extfile "$WORK/ext.cnf" -out "$WORK/tls.crt" 2>/dev/null

if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  install -m 0644 "$WORK/ca.crt" "$OUT/ca.crt"
  install -m 0600 "$WORK/ca.key" "$OUT/ca.key"
  install -m 0644 "$WORK/tls.crt" "$OUT/tls.crt"
  install -m 0600 "$WORK/tls.key" "$OUT/tls.key"
  echo "wrote $OUT/ca.crt, ca.key, tls.crt, tls.key (control plane: $HOST, spiffe://$TRUST_DOMAIN/ns/$NAMESPACE/sa/$SERVICE)"
  exit 0
fi

kubectl -n "$NAMESPACE" create secret generic tollgate-mesh-ca --from-file=ca.crt="$WORK/ca.crt" --from-file=ca.key="$WORK/ca.key" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NAMESPACE" create secret tls tollgate-controlplane-tls --cert="$WORK/tls.crt" --key="$WORK/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
for ns in "$NAMESPACE" "${INJECT[@]}"; do
  kubectl -n "$ns" create configmap tollgate-mesh-ca --from-file=ca.crt="$WORK/ca.crt" --dry-run=client -o yaml | kubectl apply -f -
done
echo "mesh CA installed; control plane certificate for $HOST valid $DAYS days (the control plane picks up a renewed one within a few minutes: the kubelet updates the Secret volume, then its 30 s reload)"

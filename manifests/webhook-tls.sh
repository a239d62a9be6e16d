#!/usr/bin/env bash
# Webhook TLS without cert-manager: makes a private CA and a serving certificate for the webhook
# Service, stores them as Secret tollgate-system/tollgate-webhook-tls, and puts the CA into the
# MutatingWebhookConfiguration's caBundle. Run it after `kubectl apply -k manifests/base`, and
# again before the certificate expires (the webhook picks up the new files without a restart).
#
#   manifests/webhook-tls.sh                 # create/replace the Secret and patch the caBundle
#   manifests/webhook-tls.sh --out DIR       # only write ca.crt, tls.crt, tls.key into DIR (GitOps,
#                                            # sealed secrets...); prints what to do with them
#   options: --namespace NS (default tollgate-system), --service NAME (default tollgate-webhook),
#            --days N (certificate lifetime, default 365)
set -euo pipefail

NAMESPACE=tollgate-system
SERVICE=tollgate-webhook
WEBHOOK_CONFIG=tollgate-sidecar-injector
SECRET=tollgate-webhook-tls
DAYS=365
OUT=""

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --namespace) NAMESPACE="$2"; shift 2 ;;
    --service) SERVICE="$2"; shift 2 ;;
    --days) DAYS="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "webhook-tls.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "webhook-tls.sh: openssl is required" >&2; exit 1; }
if [ -z "$OUT" ]; then
  command -v kubectl >/dev/null || { echo "webhook-tls.sh: kubectl is required (or use --out DIR)" >&2; exit 1; }
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
HOST="$SERVICE.$NAMESPACE.svc"

openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/ca.key" 2>/dev/null
openssl req -x509 -new -key "$WORK/ca.key" -sha256 -days "$DAYS" \
  -subj "/CN=tollgate-webhook-ca" -out "$WORK/ca.crt" 2>/dev/null

openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/tls.key.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$WORK/tls.key.ec" -out "$WORK/tls.key"
openssl req -new -key "$WORK/tls.key" -subj "/CN=$HOST" -out "$WORK/tls.csr" 2>/dev/null
cat > "$WORK/ext.cnf" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$HOST, DNS:$HOST.cluster.local, DNS:$SERVICE.$NAMESPACE
EXT
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days "$DAYS" -sha256 -extfile "$WORK/ext.cnf" -out "$WORK/tls.crt" 2>/dev/null

if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  install -m 0644 "$WORK/ca.crt" "$OUT/ca.crt"
  install -m 0644 "$WORK/tls.crt" "$OUT/tls.crt"
  install -m 0600 "$WORK/tls.key" "$OUT/tls.key"
  echo "wrote $OUT/ca.crt, $OUT/tls.crt, $OUT/tls.key for $HOST (valid $DAYS days)"
  echo "Secret:   kubectl -n $NAMESPACE create secret tls $SECRET --cert=$OUT/tls.crt --key=$OUT/tls.key"
  echo "caBundle: base64 -w0 < $OUT/ca.crt   (into webhooks[0].clientConfig.caBundle of $WEBHOOK_CONFIG)"
  exit 0
fi

kubectl -n "$NAMESPACE" create secret tls "$SECRET" --cert="$WORK/tls.crt" --key="$WORK/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f -
CA_BUNDLE="$(base64 < "$WORK/ca.crt" | tr -d '\n')"
kubectl patch mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$CA_BUNDLE\"}]"
echo "webhook TLS installed for $HOST (valid $DAYS days); renew by running this script again"

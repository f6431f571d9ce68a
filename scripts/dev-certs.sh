#!/usr/bin/env bash
# Makes a throwaway certificate authority and certificates for local TLS tests and the
# quick start: never for production (the CA key sits next to the certificates).
#
# usage: scripts/dev-certs.sh DIR [HOST...]
#   DIR/ca.pem, ca.key      the authority (give ca.pem to clients and workers)
#   DIR/server.pem, .key    the coordinator's, valid for 127.0.0.1, localhost and HOSTs
#   DIR/client.pem, .key    one client certificate (workers and clients, for mTLS)
set -euo pipefail
dir=${1:?usage: dev-certs.sh DIR [HOST...]}
shift
mkdir -p "$dir"
cd "$dir"
san="IP:127.0.0.1,DNS:localhost"
for h in "$@"; do
  if [[ $h =~ ^[0-9.]+$ ]]; then san+=",IP:$h"; else san+=",DNS:$h"; fi
done
days=30
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
  -subj "/CN=retire-cluster dev CA" -keyout ca.key -out ca.pem 2>/dev/null
issue() {  # name subject extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
    -extfile <(printf '%s\n' "$3") -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}
issue server "/CN=retire-cluster-main" "subjectAltName=$san
extendedKeyUsage=serverAuth"
issue client "/CN=retire-cluster-client" "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
echo "dev-certs: wrote ca.pem, server.pem/.key, client.pem/.key in $(pwd) (valid $days days, for $san)"

#!/bin/sh
# Test CA + server/client certificates for pgBackRest's TLS server mode (see the Dockerfile).
set -eu
dir=$1
mkdir -p "$dir" && cd "$dir"
days=3650
openssl req -new -x509 -days $days -nodes -subj "/CN=dpg-test-ca" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -new -nodes -subj "/CN=pgbackrest" -keyout server.key -out server.csr 2>/dev/null
sans="DNS:pgbackrest,DNS:localhost,DNS:patroni-1,DNS:patroni-2,DNS:patroni-3,DNS:vector-db,DNS:dr-scratch"
sans="$sans,DNS:citus-coordinator,DNS:citus-worker-1,DNS:citus-worker-2,IP:127.0.0.1"
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -extfile server.ext \
  -out server.crt 2>/dev/null
openssl req -new -nodes -subj "/CN=dpg-client" -keyout client.key -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -extfile client.ext \
  -out client.crt 2>/dev/null
rm -f ca.key ca.srl ./*.csr ./*.ext
chmod 0644 ./*.crt
chmod 0600 ./*.key

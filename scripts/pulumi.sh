#!/usr/bin/env bash
# Runs a stack with the real Pulumi engine, with everything it needs installed first:
#   scripts/pulumi.sh {preview|up|refresh|destroy|outputs|logs|repair|restore|drift|unprotect|down} STACK [--refresh]
# `local` installs and starts its own Kubernetes cluster with a real node and a PostgreSQL in
# it; `local-cnpg` the same cluster with the CloudNativePG operator and its Barman Cloud plugin
# in it (standins/localstack.py); other stacks deploy to the cluster of the stack's kubernetes:context, or of the current
# kubectl context.
# The program runs through Pulumi's Automation API (python -m deploy), so only the Pulumi CLI
# is needed, not its Python language host.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/pulumi.sh preview|up|refresh|destroy|outputs|logs|repair|restore|drift|unprotect|down STACK [--refresh]"
command=${1:?$usage}
stack=${2:?$usage}
shift 2

if [[ ! -f "stacks/Pulumi.${stack}.yaml" ]]; then
  known=()
  for file in stacks/Pulumi.*.yaml; do
    name=${file#stacks/Pulumi.}
    known+=("${name%.yaml}")
  done
  echo "error: no stack file stacks/Pulumi.${stack}.yaml (stacks: ${known[*]})" >&2
  exit 2
fi

step() { printf '==> %s\n' "$*"; }

# The Pulumi CLI: an installed one, or one built from the Go module proxy and cached.
if ! command -v pulumi >/dev/null 2>&1 && [[ ! -x "$(bash scripts/install-engine.sh path pulumi)" ]] &&
  ! command -v go >/dev/null 2>&1; then
  cat >&2 <<'MSG'
error: the Pulumi CLI is not installed, and Go is not there to build it.
  Install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/), or Go >= 1.24
  (https://go.dev/doc/install) so that this command builds it, then run it again.
MSG
  exit 2
fi

# Bad input is refused first, in a second, before any cluster or engine is looked for: the
# same checks the program runs at every preview. (The drift check compares the cluster with
# the last deploy, not with the working copy, so the working copy's migrations do not stop it.)
if [[ "$command" != down && "$command" != drift ]]; then
  make --no-print-directory deps >/dev/null
  .venv/bin/python -m deploy check "$stack"
fi

if [[ "$command" == down ]]; then
  make --no-print-directory deps
elif [[ "$stack" == local || "$stack" == local-cnpg ]]; then
  step "installing what the local stack needs (cached after the first run)"
  make --no-print-directory deps
  bash scripts/install-system-deps.sh
  bash scripts/fetch-flyway.sh "$(.venv/bin/python -m components.settings flyway-version)"
  bash scripts/install-engine.sh all
else
  # The cluster comes from the stack's own provider config when it names one; otherwise
  # from the current kubectl context (or the kubeconfig file when kubectl is not installed).
  if grep -Eq '^[[:space:]]*kubernetes:(context|kubeconfig):' "stacks/Pulumi.${stack}.yaml"; then
    echo "Kubernetes cluster: as set in stacks/Pulumi.${stack}.yaml"
  elif command -v kubectl >/dev/null 2>&1; then
    if ! context=$(kubectl config current-context 2>/dev/null); then
      cat >&2 <<MSG
error: no Kubernetes context is selected and stacks/Pulumi.${stack}.yaml names none.
  Either point kubectl at the target cluster (KUBECONFIG, or \`kubectl config use-context NAME\`),
  or name the context for this stack, under config: in stacks/Pulumi.${stack}.yaml:
    kubernetes:context: NAME
MSG
      exit 2
    fi
    echo "Kubernetes context: ${context}"
  elif [[ -z "${KUBECONFIG:-}" && ! -f "${HOME}/.kube/config" ]]; then
    cat >&2 <<MSG
error: no Kubernetes credentials found (no KUBECONFIG, no ~/.kube/config, and
  stacks/Pulumi.${stack}.yaml sets neither kubernetes:context nor kubernetes:kubeconfig).
  Configure access to the target cluster, then run this command again.
MSG
    exit 2
  fi
  make --no-print-directory deps
  bash scripts/install-engine.sh pulumi
fi

step "pulumi ${command} ${stack}"
exec .venv/bin/python -m deploy "$command" "$stack" ${PULUMI_YES:+--yes} "$@"

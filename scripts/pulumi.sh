#!/usr/bin/env bash
# Runs a Pulumi command for a stack with everything set up first:
#   scripts/pulumi.sh {up|preview|destroy} STACK
# A local file backend (.pulumi-state/) is used unless PULUMI_BACKEND_URL says otherwise,
# so no account is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:?usage: scripts/pulumi.sh up|preview|destroy STACK}
stack=${2:?usage: scripts/pulumi.sh up|preview|destroy STACK}

if [[ ! -f "stacks/Pulumi.${stack}.yaml" ]]; then
  known=()
  for file in stacks/Pulumi.*.yaml; do
    name=${file#stacks/Pulumi.}
    known+=("${name%.yaml}")
  done
  echo "error: no stack file stacks/Pulumi.${stack}.yaml (stacks: ${known[*]})" >&2
  exit 2
fi

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
error: the Pulumi CLI is not installed.
  Install it (https://www.pulumi.com/docs/iac/download-install/), e.g.
    curl -fsSL https://get.pulumi.com | sh      # then open a new shell
  and run this command again.
MSG
  exit 2
fi

# The cluster comes from the stack's own provider config when it names one; otherwise from the
# current kubectl context (or the kubeconfig file when kubectl is not installed).
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

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$(pwd)/.pulumi-state}
if [[ "$PULUMI_BACKEND_URL" == file://* ]]; then
  mkdir -p "${PULUMI_BACKEND_URL#file://}"
  # The file backend encrypts secrets with a passphrase. Unless one is provided, create a
  # random one, kept beside the state and never committed (.pulumi-state/ is ignored).
  if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    passphrase_file=".pulumi-state/passphrase"
    if [[ ! -f "$passphrase_file" ]]; then
      mkdir -p .pulumi-state
      (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase_file")
      echo "Created a passphrase for local secrets in ${passphrase_file}; keep it safe."
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE=$passphrase_file
  fi
fi

pulumi stack select --create "$stack" --non-interactive >/dev/null

case "$command" in
  up) pulumi up --stack "$stack" --diff ${PULUMI_YES:+--yes} ;;
  preview) pulumi preview --stack "$stack" --diff ;;
  destroy) pulumi destroy --stack "$stack" ${PULUMI_YES:+--yes} ;;
  *) echo "error: unknown command ${command} (up, preview, destroy)" >&2; exit 2 ;;
esac

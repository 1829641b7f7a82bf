# Shared by the hack/ scripts: where builds are cached, and which CLI to use.
# shellcheck shell=bash

export GOTOOLCHAIN=local
IRSA_CACHE=${IRSA_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/terraform-provider-irsa}
TOFU_VERSION=v1.12.6

# tofu_dir is where the fallback OpenTofu build lives, keyed by its build module.
tofu_dir() {
  local key
  key=$(cat hack/tofu/go.mod hack/tofu/go.sum | sha256sum | cut -c1-12)
  echo "$IRSA_CACHE/tofu-$key"
}

# terraform_cli prints the CLI the tests and the demo use: terraform when the
# machine has it (unless IRSA_USE_TOFU=1), else the OpenTofu build.
terraform_cli() {
  if [ "${IRSA_USE_TOFU:-0}" != 1 ] && command -v terraform >/dev/null 2>&1; then
    command -v terraform
  else
    echo "$(tofu_dir)/tofu"
  fi
}

# A CLI configuration variable naming a file that does not exist only makes
# terraform warn on every command; fall back to terraform's default.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE
fi

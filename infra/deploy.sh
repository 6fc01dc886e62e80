#!/usr/bin/env bash
# Provision (infra/main.bicep) and deploy the package (scripts/package.sh) with the Azure CLI.
#
#   ASSISTANTS_API_KEYS=sk-... OPENAI_API_KEY=sk-... infra/deploy.sh <resource-group> <name> [location]
#
# Optional environment: PLAN (flex | consumption, default flex), OPENAI_BASE_URL,
# AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, AZURE_OPENAI_DEPLOYMENTS, CODE_INTERPRETER
# (true | false: the session pool for the code_interpreter tool, default true),
# CODE_INTERPRETER_SESSION_KEY (default: the deployed app's, else a new random one),
# WEBHOOK_URL and WEBHOOK_SECRET (run and vector-store events; none by default). Secrets
# are passed as secure parameters from the environment; they are not written to any file.
#
# Not run from this project's machines (they reach no Azure endpoint): written from the
# Azure CLI and Functions documentation; see README "Deploy to Azure".
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# < 2)); then
    echo "usage: infra/deploy.sh <resource-group> <name> [location]" >&2
    exit 2
fi
RG="$1"
NAME="$2"
LOCATION="${3:-westeurope}"
PLAN="${PLAN:-flex}"
: "${ASSISTANTS_API_KEYS:?set ASSISTANTS_API_KEYS (the bearer keys clients will use)}"
command -v az >/dev/null || { echo "deploy.sh: the Azure CLI (az) is required" >&2; exit 2; }

if [[ "$PLAN" == "flex" ]]; then
    # Custom handlers on Flex need the `custom` runtime in the region.
    if ! az functionapp list-flexconsumption-runtimes --location "$LOCATION" -o tsv 2>/dev/null | grep -qi custom; then
        echo "deploy.sh: Flex Consumption in $LOCATION does not list the 'custom' runtime; use PLAN=consumption or another region" >&2
        exit 1
    fi
fi

scripts/package.sh

az group create --name "$RG" --location "$LOCATION" --output none

# Session ids are derived from this key: keep the deployed one so threads keep their sessions.
if [[ -z "${CODE_INTERPRETER_SESSION_KEY:-}" ]]; then
    CODE_INTERPRETER_SESSION_KEY="$(az functionapp config appsettings list \
        --resource-group "$RG" --name "$NAME-app" \
        --query "[?name=='CODE_INTERPRETER_SESSION_KEY'].value | [0]" -o tsv 2>/dev/null || true)"
fi
if [[ -z "${CODE_INTERPRETER_SESSION_KEY:-}" ]]; then
    CODE_INTERPRETER_SESSION_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
fi
outputs="$(az deployment group create \
    --resource-group "$RG" \
    --template-file infra/main.bicep \
    --parameters name="$NAME" plan="$PLAN" \
        assistantsApiKeys="$ASSISTANTS_API_KEYS" \
        openAiBaseUrl="${OPENAI_BASE_URL:-https://api.openai.com/v1}" \
        openAiApiKey="${OPENAI_API_KEY:-}" \
        azureOpenAiEndpoint="${AZURE_OPENAI_ENDPOINT:-}" \
        azureOpenAiApiKey="${AZURE_OPENAI_API_KEY:-}" \
        azureOpenAiDeployments="${AZURE_OPENAI_DEPLOYMENTS:-}" \
        codeInterpreter="${CODE_INTERPRETER:-true}" \
        codeInterpreterSessionKey="$CODE_INTERPRETER_SESSION_KEY" \
        webhookUrl="${WEBHOOK_URL:-}" \
        webhookSecret="${WEBHOOK_SECRET:-}" \
    --query properties.outputs --output json)"
app="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["appName"]["value"])' <<<"$outputs")"
api="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["apiBaseUrl"]["value"])' <<<"$outputs")"

# Zip deployment: on Linux Consumption the CLI uploads the package and points
# WEBSITE_RUN_FROM_PACKAGE at it; on Flex it publishes to the deployment container.
az functionapp deployment source config-zip \
    --resource-group "$RG" --name "$app" --src dist/assistants-service.zip --output none

echo "Deployed. Point the OpenAI SDK at: $api"

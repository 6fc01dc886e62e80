// Azure resources for the Assistants service as an Azure Functions custom handler:
// a storage account (state container, `work` queue, deployment container), Application
// Insights, a Function App on Flex Consumption (default) or Linux Consumption, a system-assigned
// identity with the storage roles the app needs, and (unless codeInterpreter=false) an Azure
// Container Apps code-interpreter session pool that runs the code_interpreter tool's Python.
//
// Secrets are parameters (pass them at deployment time, e.g. from Key Vault), never values
// in this file. NOT compiled or deployed from this project's machines: no Bicep compiler can
// be installed from the registries they reach. See README "Deploy to Azure".

@description('Base name for the resources (lowercase letters and digits).')
@minLength(3)
@maxLength(16)
param name string

param location string = resourceGroup().location

@allowed(['flex', 'consumption'])
@description('Flex Consumption (recommended; Linux Consumption retires in 2028) or Linux Consumption.')
param plan string = 'flex'

@secure()
@description('Comma-separated bearer keys the service accepts (key or key=tenant).')
param assistantsApiKeys string

@description('Chat Completions endpoint (OpenAI-compatible). Leave empty when using Azure OpenAI.')
param openAiBaseUrl string = 'https://api.openai.com/v1'

@secure()
param openAiApiKey string = ''

@description('Azure OpenAI endpoint, e.g. https://<resource>.openai.azure.com (optional).')
param azureOpenAiEndpoint string = ''

@secure()
param azureOpenAiApiKey string = ''

@description('model=deployment pairs for Azure OpenAI, comma-separated.')
param azureOpenAiDeployments string = ''

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Create a code-interpreter session pool for the code_interpreter tool (false: the tool is off).')
param codeInterpreter bool = true

@minValue(1)
@maxValue(600)
@description('Sessions the pool may hold at once (one per thread that used the tool recently).')
param codeInterpreterMaxSessions int = 100

@minValue(300)
@maxValue(3600)
@description('Seconds a session may stay idle before the pool ends it (and its variables and files).')
param codeInterpreterCooldownSeconds int = 1800

@secure()
@description('Secret that session identifiers are derived from (HMAC of tenant and thread). Keep it across deployments: a new key orphans the sessions of existing threads. deploy.sh reuses the deployed one.')
param codeInterpreterSessionKey string

@description('Webhook endpoint for run and vector-store events (WEBHOOK_URL; empty: no webhooks).')
param webhookUrl string = ''

@secure()
@description('Secret the events are signed with (WEBHOOK_SECRET: whsec_ and base64, as OpenAI issues them). Required with webhookUrl.')
param webhookSecret string = ''

@description('Also grant Contributor on the pool: Microsoft Learn says a caller needs both Session Executor and Contributor on the pool; set false to try Session Executor alone.')
param codeInterpreterGrantContributor bool = true

var storageName = toLower('${name}st${uniqueString(resourceGroup().id)}')
var deploymentContainer = 'app-package'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take(storageName, 24)
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'assistants'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'work'
}

// The host moves messages here after maxDequeueCount; the handler ends runs before that,
// so anything here is worth an alert.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'work-poison'
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource hostingPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${name}-plan'
  location: location
  kind: 'functionapp'
  sku: plan == 'flex' ? { name: 'FC1', tier: 'FlexConsumption' } : { name: 'Y1', tier: 'Dynamic' }
  properties: { reserved: true }
}

// The code-interpreter session pool: Microsoft's Python image (PythonLTS), each session a
// Hyper-V sandbox with its own /mnt/data, no outbound network (EgressDisabled), and no
// managed identity inside the sessions (code there must not be able to get tokens).
resource sessionPool 'Microsoft.App/sessionPools@2024-08-02-preview' = if (codeInterpreter) {
  name: '${name}-sessions'
  location: location
  properties: {
    poolManagementType: 'Dynamic'
    containerType: 'PythonLTS'
    scaleConfiguration: {
      maxConcurrentSessions: codeInterpreterMaxSessions
    }
    dynamicPoolConfiguration: {
      executionType: 'Timed'
      cooldownPeriodInSeconds: codeInterpreterCooldownSeconds
    }
    sessionNetworkConfiguration: {
      status: 'EgressDisabled'
    }
  }
}

var poolEndpoint = codeInterpreter ? sessionPool.properties.poolManagementEndpoint : ''

// The storage connection string is a setting the Functions host and the service both read
// (`AzureWebJobsStorage`); the service's legacy storage crates need a key.
var storageConnection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

var serviceSettings = [
  { name: 'AzureWebJobsStorage', value: storageConnection }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'STORAGE', value: 'azure' }
  { name: 'STORAGE_CONTAINER', value: stateContainer.name }
  { name: 'QUEUE_NAME', value: workQueue.name }
  { name: 'ASSISTANTS_API_KEYS', value: assistantsApiKeys }
  { name: 'OPENAI_BASE_URL', value: openAiBaseUrl }
  { name: 'OPENAI_API_KEY', value: openAiApiKey }
  { name: 'AZURE_OPENAI_ENDPOINT', value: azureOpenAiEndpoint }
  { name: 'AZURE_OPENAI_API_KEY', value: azureOpenAiApiKey }
  { name: 'AZURE_OPENAI_DEPLOYMENTS', value: azureOpenAiDeployments }
  { name: 'WORK_MAX_ATTEMPTS', value: '5' }
  // The app reaches the pool with its managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER,
  // set by the platform) and runs a self-test at start; without a pool the tool is off.
  { name: 'CODE_INTERPRETER', value: codeInterpreter ? 'azure' : 'off' }
  { name: 'CODE_INTERPRETER_POOL_ENDPOINT', value: poolEndpoint }
  { name: 'CODE_INTERPRETER_SESSION_KEY', value: codeInterpreterSessionKey }
  { name: 'CODE_INTERPRETER_TIMEOUT_SECONDS', value: '60' }
  { name: 'WEBHOOK_URL', value: webhookUrl }
  { name: 'WEBHOOK_SECRET', value: webhookSecret }
  { name: 'RUST_LOG', value: 'info' }
]

var consumptionSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
]

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: '${name}-app'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: hostingPlan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: plan == 'flex' ? null : ''
      minTlsVersion: '1.2'
      appSettings: plan == 'flex' ? serviceSettings : concat(consumptionSettings, serviceSettings)
    }
    functionAppConfig: plan == 'flex' ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: { name: 'custom', version: '1.0' }
    } : null
  }
}

// Roles for the app's identity: blobs (state and the deployment package) and queues.
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
}

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.blobDataOwner)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataOwner)
  }
}

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.queueDataContributor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
  }
}

// Roles for the app's identity on the session pool: "Azure ContainerApps Session Executor"
// runs code and manages files in sessions.
var sessionRoles = {
  sessionExecutor: '0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0'
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
}

resource sessionExecutorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (codeInterpreter) {
  scope: sessionPool
  name: guid(resourceGroup().id, '${name}-sessions', app.id, sessionRoles.sessionExecutor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sessionRoles.sessionExecutor)
  }
}

resource sessionContributorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (codeInterpreter && codeInterpreterGrantContributor) {
  scope: sessionPool
  name: guid(resourceGroup().id, '${name}-sessions', app.id, sessionRoles.contributor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sessionRoles.contributor)
  }
}

output appName string = app.name
output apiBaseUrl string = 'https://${app.properties.defaultHostName}/v1'
output storageAccount string = storage.name
output packageContainer string = deploymentContainer
output sessionPoolEndpoint string = poolEndpoint

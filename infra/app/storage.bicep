// The storage account: Refit's tables, queues and blob containers, and the Flex deployment package container.
// Shared keys are off: everything reaches it with Microsoft Entra identities (rbac.bicep).
param location string
param tags object
param name string
param deploymentContainerName string

// The names of src/storage/storage.ts `names` (test/unit/infra checks they match). Refit also creates them at start.
var tableNames = [
  'runs'
  'counters'
  'tasks'
  'dedupe'
  'triggerDecisions'
  'dependencies'
  'imageUpdates'
  'queuedRuns'
  'watches'
  'watchedRegistries'
  'aciAdmission'
]
var queueNames = [
  'runs'
  'runs-poison'
  'image-pushes'
  'image-pushes-poison'
  'update-notifications'
  'update-notifications-poison'
  'run-dependencies'
  'run-dependencies-poison'
  'run-completions'
  'run-completions-poison'
]
var containerNames = [
  'sources'
  'logs'
  'run-graphs'
]
var runCompletionsQueueName = 'run-completions'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containerNames: {
    parent: blobService
    name: container
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queueNames: {
    parent: queueService
    name: queue
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in tableNames: {
    parent: tableService
    name: table
  }
]

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
// rbac.bicep scopes the builder's Message Sender role to this queue (a module output: it waits for the queues).
output runCompletionsQueueName string = runCompletionsQueueName

// Every role assignment of the deployment. A module deploys to one scope, so main.bicep deploys this file once per
// scope that holds something to grant on (`grants`): the app's resource group, the builds' resource group, the
// registry's resource group.
//
// Role definition IDs are Azure's built-in ones, from
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles (test/unit/infra checks them).
@allowed([
  'app'
  'builds'
  'registry'
])
param grants string
param appPrincipalId string
param builderPrincipalId string
@description('The deploying user, given the app\'s storage data roles for debugging; empty for none.')
param userPrincipalId string
param storageAccountName string
param runCompletionsQueueName string
param builderIdentityName string
param applicationInsightsName string
param registryName string

var roles = {
  // Blob Data Owner: what the Functions docs ask for on the host's own storage (AzureWebJobsStorage: timer leases
  // and schedules, the deployment package). Refit's blobs and the user-delegation SAS it signs would need less.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  // Microsoft.ContainerRegistry/registries/artifacts/delete: delete repositories, tags and manifests.
  acrDelete: 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'
  // Create, read and delete container groups; the builds' resource group holds nothing else.
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
  // Attach the builder identity to a container group (Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action).
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
}

var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

var inApp = grants == 'app'
var inBuilds = grants == 'builds'
var inRegistry = grants == 'registry'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource runCompletionsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: runCompletionsQueueName
}

resource builderIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: builderIdentityName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in appStorageRoles: if (inApp) {
    name: guid(storage.id, appPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource userStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in appStorageRoles: if (inApp && !empty(userPrincipalId)) {
    name: guid(storage.id, userPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: userPrincipalId
      principalType: 'User'
    }
  }
]

// The builder's report container posts its run's completion to this one queue, and may do nothing else in storage.
resource builderCompletions 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inApp) {
  name: guid(runCompletionsQueue.id, builderPrincipalId, roles.storageQueueDataMessageSender)
  scope: runCompletionsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: builderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appAssignsBuilder 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inApp) {
  name: guid(builderIdentity.id, appPrincipalId, roles.managedIdentityOperator)
  scope: builderIdentity
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.managedIdentityOperator)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inApp) {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appBuildGroups 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inBuilds) {
  name: guid(resourceGroup().id, appPrincipalId, roles.contributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.contributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource builderPush 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inRegistry) {
  name: guid(registry.id, builderPrincipalId, roles.acrPush)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPush)
    principalId: builderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource builderPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inRegistry) {
  name: guid(registry.id, builderPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: builderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app resolves the digests of base images that live in the home registry (the bases a run records as built
// from): read only.
resource appPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inRegistry) {
  name: guid(registry.id, appPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app deletes the run-scoped images (refit-runs/...) a multi-step run leaves in the home registry once the run
// ends; AcrDelete grants deletion and nothing else (no pull, no push).
resource appDelete 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (inRegistry) {
  name: guid(registry.id, appPrincipalId, roles.acrDelete)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrDelete)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

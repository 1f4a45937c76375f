// The function app on a Flex Consumption plan (Node 20), with its user-assigned identity, identity-based
// AzureWebJobsStorage and the settings src/config.ts reads for REFIT_EXECUTOR=aci.
param name string
param location string
param tags object
param planName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param identityId string
param identityClientId string
param registryLoginServer string
param buildResourceGroupName string
param builderIdentityId string
param builderIdentityClientId string
@secure()
param refitSecretKey string
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      // No FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE and the like: Flex Consumption refuses them; the
      // runtime is functionAppConfig.runtime below.
      appSettings: [
        // The host's own storage, by identity (functions-reference.md, identity-based connections). Refit reads
        // the account name (src/config.ts storage()); DefaultAzureCredential picks the identity by AZURE_CLIENT_ID.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: storage.properties.primaryEndpoints.table }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'REFIT_EXECUTOR', value: 'aci' }
        { name: 'REFIT_REGISTRY', value: registryLoginServer }
        { name: 'REFIT_SECRET_KEY', value: refitSecretKey }
        { name: 'REFIT_IDENTITY_CLIENT_ID', value: identityClientId }
        { name: 'REFIT_ACI_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        { name: 'REFIT_ACI_RESOURCE_GROUP', value: buildResourceGroupName }
        { name: 'REFIT_ACI_LOCATION', value: location }
        { name: 'REFIT_ACI_IDENTITY_ID', value: builderIdentityId }
        { name: 'REFIT_ACI_IDENTITY_CLIENT_ID', value: builderIdentityClientId }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '20'
      }
    }
  }
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName

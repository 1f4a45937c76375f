// The two user-assigned identities: the function app's (storage, ARM, the registry, and the Key Vault secrets that
// tasks name, which Refit reads itself) and the builder's (attached to each build container group: AcrPush and
// AcrPull for kaniko, and the right to post its run's completion).
param location string
param tags object
param appIdentityName string
param builderIdentityName string

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource builderIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: builderIdentityName
  location: location
  tags: tags
}

output appIdentityId string = appIdentity.id
output appIdentityClientId string = appIdentity.properties.clientId
output appPrincipalId string = appIdentity.properties.principalId
output builderIdentityName string = builderIdentity.name
output builderIdentityId string = builderIdentity.id
output builderIdentityClientId string = builderIdentity.properties.clientId
output builderPrincipalId string = builderIdentity.properties.principalId

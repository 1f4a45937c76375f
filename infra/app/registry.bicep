// The home registry (an existing one, or a new Basic one) and the Event Grid system topic on it. The topic's
// subscription to the imageEventGrid function is made by azure.yaml's postdeploy hook: it cannot exist before the
// function does.
param name string
param create bool
param location string
param tags object
param systemTopicName string

resource newRegistry 'Microsoft.ContainerRegistry/registries@2023-07-01' = if (create) {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: name
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: create ? location : registry.location
  tags: tags
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
  dependsOn: [
    newRegistry
  ]
}

output name string = name
output loginServer string = create ? newRegistry.properties.loginServer : registry.properties.loginServer
output systemTopicName string = systemTopic.name

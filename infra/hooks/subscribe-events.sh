#!/bin/sh
# azd postdeploy hook: subscribes the function imageEventGrid to the registry's image pushes (Event Grid system
# topic made by infra/app/registry.bicep). The azurefunction endpoint type addresses the function by resource ID,
# so no function key is handled. Re-running it updates the same subscription.
set -eu
eval "$(azd env get-values)"
az eventgrid system-topic event-subscription create \
  --name refit-image-pushed \
  --resource-group "$REFIT_REGISTRY_RESOURCE_GROUP" \
  --system-topic-name "$REFIT_EVENT_GRID_SYSTEM_TOPIC_NAME" \
  --endpoint-type azurefunction \
  --endpoint "$AZURE_FUNCTION_APP_ID/functions/imageEventGrid" \
  --included-event-types Microsoft.ContainerRegistry.ImagePushed \
  --event-delivery-schema eventgridschema \
  --output none
echo "Subscribed imageEventGrid to Microsoft.ContainerRegistry.ImagePushed on $REFIT_REGISTRY"

# azd postdeploy hook: subscribes the function imageEventGrid to the registry's image pushes (Event Grid system
# topic made by infra/app/registry.bicep). The azurefunction endpoint type addresses the function by resource ID,
# so no function key is handled. Re-running it updates the same subscription.
$ErrorActionPreference = 'Stop'
$values = @{}
foreach ($line in (azd env get-values)) {
  if ($line -match '^([^=]+)="?(.*?)"?$') { $values[$Matches[1]] = $Matches[2] }
}
az eventgrid system-topic event-subscription create `
  --name refit-image-pushed `
  --resource-group $values['REFIT_REGISTRY_RESOURCE_GROUP'] `
  --system-topic-name $values['REFIT_EVENT_GRID_SYSTEM_TOPIC_NAME'] `
  --endpoint-type azurefunction `
  --endpoint "$($values['AZURE_FUNCTION_APP_ID'])/functions/imageEventGrid" `
  --included-event-types Microsoft.ContainerRegistry.ImagePushed `
  --event-delivery-schema eventgridschema `
  --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "Subscribed imageEventGrid to Microsoft.ContainerRegistry.ImagePushed on $($values['REFIT_REGISTRY'])"

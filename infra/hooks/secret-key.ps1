# azd preprovision hook: gives the environment a REFIT_SECRET_KEY (32 random bytes, base64) unless it has one.
$ErrorActionPreference = 'Stop'
$existing = azd env get-value REFIT_SECRET_KEY 2>$null
if ($LASTEXITCODE -ne 0 -or [string]::IsNullOrEmpty($existing)) {
  $key = node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))"
  azd env set REFIT_SECRET_KEY $key
}

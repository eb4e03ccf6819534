{{/* Chart name, overridable. */}}
{{- define "renderd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, or the release alone when it already names the chart. */}}
{{- define "renderd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "renderd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object of the release carries, whatever its component. */}}
{{- define "renderd.commonLabels" -}}
helm.sh/chart: {{ include "renderd.chart" . }}
app.kubernetes.io/name: {{ include "renderd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: renderd
{{- end }}

{{/* Labels of the server and the objects around it. */}}
{{- define "renderd.labels" -}}
{{ include "renderd.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels that select the server's pods (never change them on upgrade); the migration Job
and the test pod carry another component, so the Service never routes to them. */}}
{{- define "renderd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "renderd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "renderd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "renderd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "renderd.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret the pods read: the release's own or one the operator manages. */}}
{{- define "renderd.secretName" -}}
{{- default (include "renderd.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
"true" when the Secret holds KEY: for the chart's own Secret, when its value is set; for an
existingSecret, when KEY is listed in secret.existingSecretKeys.
Usage: include "renderd.hasSecretKey" (list . "database-url")
*/}}
{{- define "renderd.hasSecretKey" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- if $root.Values.secret.existingSecret }}
{{- if has $key $root.Values.secret.existingSecretKeys }}true{{ end }}
{{- else }}
{{- $values := dict
      "jwt-hs256-secret" $root.Values.secret.jwtHs256Secret
      "jwks.json" $root.Values.secret.jwks
      "database-url" $root.Values.secret.databaseUrl
      "s3-access-key-id" $root.Values.secret.s3AccessKeyId
      "s3-secret-access-key" $root.Values.secret.s3SecretAccessKey
      "webhook-signing-secret" $root.Values.secret.webhookSigningSecret
      "url-signing-key" $root.Values.secret.urlSigningKey }}
{{- if index $values $key }}true{{ end }}
{{- end }}
{{- end }}

{{/* "true" when the Secret holds any key at all (then it is mounted and rendered). */}}
{{- define "renderd.hasAnySecret" -}}
{{- $root := . }}
{{- range $key := list "jwt-hs256-secret" "jwks.json" "database-url" "s3-access-key-id" "s3-secret-access-key" "webhook-signing-secret" "url-signing-key" }}
{{- if include "renderd.hasSecretKey" (list $root $key) }}true{{ end }}
{{- end }}
{{- end }}

{{/* Where the Secret's keys appear as files inside the container. */}}
{{- define "renderd.secretDir" -}}/etc/renderd/secrets{{- end }}

{{/* Where the data volume is mounted: the image's ./data (WORKDIR /var/lib/renderd). */}}
{{- define "renderd.dataDir" -}}/var/lib/renderd/data{{- end }}

{{/*
renderd's TOML: .Values.config as given, with the keys the chart owns set over it (listen
addresses from the ports, the worker's shutdown grace from drain, and secret file paths).
Helm reads YAML numbers as floats, so whole numbers print as 1000.0; renderd's loader (the
config crate) reads a whole float where an integer is expected.
*/}}
{{- define "renderd.configToml" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $owned := dict
      "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.grpc)))
      "worker" (dict "shutdown_grace" (printf "%ds" (int .Values.drain.shutdownGraceSeconds))) }}
{{- if .Values.metrics.enabled }}
{{- $_ := set $owned "telemetry" (dict "metrics_listen" (printf "0.0.0.0:%d" (int .Values.ports.metrics))) }}
{{- end }}
{{- $secretDir := include "renderd.secretDir" . }}
{{- $auth := dict }}
{{- if include "renderd.hasSecretKey" (list . "jwt-hs256-secret") }}
{{- $_ := set $auth "hs256_secret_file" (printf "%s/jwt-hs256-secret" $secretDir) }}
{{- end }}
{{- if include "renderd.hasSecretKey" (list . "jwks.json") }}
{{- $_ := set $auth "jwks_file" (printf "%s/jwks.json" $secretDir) }}
{{- end }}
{{- if $auth }}
{{- $_ := set $owned "auth" $auth }}
{{- end }}
{{- if include "renderd.hasSecretKey" (list . "webhook-signing-secret") }}
{{- $_ := set $owned "webhooks" (dict "signing_secret_file" (printf "%s/webhook-signing-secret" $secretDir)) }}
{{- end }}
{{- $_ := mustMergeOverwrite $config $owned }}
{{- toToml $config }}
{{- end }}

{{/* Environment for secrets that renderd reads from variables rather than files. */}}
{{- define "renderd.secretEnv" -}}
{{- $secret := include "renderd.secretName" . }}
{{- if include "renderd.hasSecretKey" (list . "database-url") }}
- name: RENDERD__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: database-url
{{- end }}
{{- if include "renderd.hasSecretKey" (list . "url-signing-key") }}
- name: RENDERD__OUTPUT__SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: url-signing-key
{{- end }}
{{- if include "renderd.hasSecretKey" (list . "s3-access-key-id") }}
- name: RENDERD__STORAGE__S3__ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: s3-access-key-id
{{- end }}
{{- if include "renderd.hasSecretKey" (list . "s3-secret-access-key") }}
- name: RENDERD__STORAGE__S3__SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: s3-secret-access-key
{{- end }}
{{- end }}

{{/* Seconds Kubernetes waits after it starts stopping a pod: preStop sleep, the worker's
drain, and a margin for closing connections and flushing telemetry. */}}
{{- define "renderd.terminationGracePeriodSeconds" -}}
{{- add (int .Values.drain.preStopSleepSeconds) (int .Values.drain.shutdownGraceSeconds) (int .Values.drain.extraSeconds) }}
{{- end }}

{{/* The container and pod security contexts shared by the server, the migration Job and the test. */}}
{{- define "renderd.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "renderd.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

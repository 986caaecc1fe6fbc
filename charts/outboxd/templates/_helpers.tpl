{{/* ---- names and labels ------------------------------------------------------------- */}}

{{- define "outboxd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "outboxd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "outboxd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "outboxd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outboxd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "outboxd.labels" -}}
helm.sh/chart: {{ include "outboxd.chart" . }}
{{ include "outboxd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* "annotations:" with commonAnnotations merged with the dict `extra`, or nothing. Use as
     {{- with include "outboxd.annotations" (dict "context" . "extra" ...) }}{{ . | nindent 2 }}{{ end }} */}}
{{- define "outboxd.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (deepCopy (.context.Values.commonAnnotations | default dict)) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{- define "outboxd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outboxd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "outboxd.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* ---- configuration ---------------------------------------------------------------- */}}

{{/* "values", "existingConfigMap" or "connector". */}}
{{- define "outboxd.configMode" -}}
{{- if .Values.connector.enabled -}}connector
{{- else if .Values.existingConfigMap -}}existingConfigMap
{{- else -}}values
{{- end -}}
{{- end -}}

{{/* The ConfigMap mounted at /etc/outboxd. */}}
{{- define "outboxd.configMapName" -}}
{{- $mode := include "outboxd.configMode" . -}}
{{- if eq $mode "existingConfigMap" -}}
{{- .Values.existingConfigMap -}}
{{- else if and (eq $mode "connector") .Values.connector.existingConfigMap -}}
{{- .Values.connector.existingConfigMap -}}
{{- else -}}
{{- include "outboxd.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Whether the chart renders the ConfigMap itself ("true" or ""). */}}
{{- define "outboxd.createConfigMap" -}}
{{- $mode := include "outboxd.configMode" . -}}
{{- if or (eq $mode "values") (and (eq $mode "connector") (not .Values.connector.existingConfigMap)) -}}true{{- end -}}
{{- end -}}

{{/* The key of the configuration file in the ConfigMap. */}}
{{- define "outboxd.configKey" -}}
{{- $mode := include "outboxd.configMode" . -}}
{{- if eq $mode "existingConfigMap" -}}{{ .Values.existingConfigMapKey }}
{{- else if eq $mode "connector" -}}{{ if .Values.connector.existingConfigMap }}{{ .Values.connector.existingConfigMapKey }}{{ else }}connector.json{{ end }}
{{- else -}}outboxd.toml
{{- end -}}
{{- end -}}

{{/* The key of the worker properties in the ConfigMap, or "" (connector mode only). */}}
{{- define "outboxd.workerKey" -}}
{{- if .Values.connector.enabled -}}
{{- if .Values.connector.existingConfigMap -}}{{ .Values.connector.existingConfigMapWorkerKey }}
{{- else if .Values.connector.workerProperties -}}worker.properties
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "outboxd.kafkaSaslPasswordGiven" -}}
{{- if or .Values.kafka.sasl.existingSecret .Values.kafka.sasl.password -}}true{{- end -}}
{{- end -}}

{{/* The configuration as values, with what the chart manages (http.addr, sasl.password). */}}
{{- define "outboxd.effectiveConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $http := get $cfg "http" | default dict -}}
{{- $_ := set $http "addr" (printf "0.0.0.0:%d" (int .Values.containerPorts.http)) -}}
{{- $_ := set $cfg "http" $http -}}
{{- if include "outboxd.kafkaSaslPasswordGiven" . -}}
{{- $kafka := get $cfg "kafka" | default dict -}}
{{- if not (hasKey $kafka "sasl.password") -}}
{{- $_ := set $kafka "sasl.password" "${env:KAFKA_SASL_PASSWORD}" -}}
{{- end -}}
{{- $_ := set $cfg "kafka" $kafka -}}
{{- end -}}
{{- toJson $cfg -}}
{{- end -}}

{{/* outboxd.toml, rendered from the values (or `config` itself when it is a TOML string). */}}
{{- define "outboxd.toml" -}}
{{- if kindIs "string" .Values.config -}}
{{- .Values.config -}}
{{- else -}}
# Rendered by the outboxd Helm chart from the values `config` (docs/configuration.md).
{{- include "outboxd.tomlTable" (dict "path" (list) "table" (include "outboxd.effectiveConfig" . | fromJson)) }}
{{- end -}}
{{- end -}}

{{/* A TOML key: bare when it may be, else a quoted string. */}}
{{- define "outboxd.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* A TOML value. Helm reads whole numbers of values files as floats: they are written as
     integers (outboxd's integer keys refuse 30000.0). A string is a basic string escaped as JSON
     escapes it (TOML reads JSON's escapes alike); when that needs an escape (JSON escapes & < >
     too) and the string holds no ' nor control character, a literal string '...' instead. */}}
{{- define "outboxd.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- $json := toJson $v -}}
{{- if and (contains "\\" $json) (regexMatch "^[^'\\x00-\\x08\\x0a-\\x1f\\x7f]*$" $v) -}}'{{ $v }}'{{- else -}}{{ $json }}{{- end -}}
{{- else if kindIs "bool" $v -}}{{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) -}}
{{- if eq (float64 (int64 $v)) (float64 $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) -}}{{ $v }}
{{- else if kindIs "slice" $v -}}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "outboxd.tomlValue" $e }}{{ end }}]
{{- else if kindIs "map" $v -}}{ {{- $first := true -}}{{ range $k, $e := $v }}{{ if not (kindIs "invalid" $e) }}{{ if not $first }}, {{ end }}{{ $first = false }}{{ include "outboxd.tomlKey" $k }} = {{ include "outboxd.tomlValue" $e }}{{ end }}{{ end }} }
{{- else -}}{{ fail (printf "config: cannot write %v (%s) as TOML" $v (kindOf $v)) }}
{{- end -}}
{{- end -}}

{{/* A TOML table: its plain keys, then its sub-tables as [a.b] sections. Null values (a
     default removed with `key: null`) are left out. */}}
{{- define "outboxd.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{- range $k, $v := $table -}}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) }}
{{ include "outboxd.tomlKey" $k }} = {{ include "outboxd.tomlValue" $v }}
{{- end -}}
{{- end -}}
{{- /* Top-level sections in the order of docs/configuration.md, then any other. */ -}}
{{- $order := list -}}
{{- if not $path -}}
{{- $order = list "source" "router" "converters" "kafka" "errors" "pipeline" "offsets" "exactly_once" "http" -}}
{{- end -}}
{{- $keys := list -}}
{{- range $order -}}{{- if hasKey $table . -}}{{- $keys = append $keys . -}}{{- end -}}{{- end -}}
{{- range $k, $_ := $table -}}{{- if not (has $k $order) -}}{{- $keys = append $keys $k -}}{{- end -}}{{- end -}}
{{- range $k := $keys -}}
{{- $v := get $table $k -}}
{{- if kindIs "map" $v -}}
{{- $sub := append $path $k }}

[{{ range $i, $p := $sub }}{{ if $i }}.{{ end }}{{ include "outboxd.tomlKey" $p }}{{ end }}]
{{- include "outboxd.tomlTable" (dict "path" $sub "table" $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The connector JSON: the value itself when it is a string, else the values as JSON. */}}
{{- define "outboxd.connectorJson" -}}
{{- if kindIs "string" .Values.connector.json -}}
{{- .Values.connector.json -}}
{{- else -}}
{{- toPrettyJson .Values.connector.json -}}
{{- end -}}
{{- end -}}

{{/* pipeline.shutdown_timeout_ms as outboxd will read it: from the values (or the TOML string),
     else outboxd's default, 30000 (also for an existing ConfigMap and the connector JSON, which
     has no such key). */}}
{{- define "outboxd.shutdownTimeoutMs" -}}
{{- $ms := 30000 -}}
{{- if eq (include "outboxd.configMode" .) "values" -}}
{{- if kindIs "string" .Values.config -}}
{{- $m := regexFind "(?m)^\\s*shutdown_timeout_ms\\s*=\\s*[0-9_]+" .Values.config -}}
{{- if $m -}}{{- $ms = regexFind "[0-9_]+$" $m | replace "_" "" | int64 -}}{{- end -}}
{{- else -}}
{{- $pipeline := (.Values.config | default dict).pipeline | default dict -}}
{{- if hasKey $pipeline "shutdown_timeout_ms" -}}
{{- if not (kindIs "invalid" $pipeline.shutdown_timeout_ms) -}}{{- $ms = int64 $pipeline.shutdown_timeout_ms -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ms -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the value when set (it must exceed the shutdown timeout),
     else the shutdown timeout rounded up to seconds plus the margin. */}}
{{- define "outboxd.terminationGracePeriodSeconds" -}}
{{- $ms := include "outboxd.shutdownTimeoutMs" . | int64 -}}
{{- $given := .Values.terminationGracePeriodSeconds -}}
{{- if or (kindIs "invalid" $given) (eq (toString $given) "") -}}
{{- add (div (add $ms 999) 1000) (int64 .Values.terminationGracePeriodMarginSeconds) -}}
{{- else -}}
{{- if le (mul (int64 $given) 1000) $ms -}}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must be longer than pipeline.shutdown_timeout_ms (%d ms): Kubernetes would kill outboxd before its final confirmation" (int64 $given) $ms) -}}
{{- end -}}
{{- int64 $given -}}
{{- end -}}
{{- end -}}

{{/* ---- deployment shape ------------------------------------------------------------- */}}

{{- define "outboxd.readinessPath" -}}
{{- if .Values.readinessProbe.path -}}{{ .Values.readinessProbe.path }}
{{- else if gt (int .Values.replicaCount) 1 -}}/healthz
{{- else -}}/readyz
{{- end -}}
{{- end -}}

{{- define "outboxd.strategy" -}}
{{- if .Values.updateStrategy -}}
{{- toYaml .Values.updateStrategy -}}
{{- else if gt (int .Values.replicaCount) 1 -}}
type: RollingUpdate
rollingUpdate:
  maxSurge: 0
  maxUnavailable: 1
{{- else -}}
type: Recreate
{{- end -}}
{{- end -}}

{{/* ---- secrets ---------------------------------------------------------------------- */}}

{{- define "outboxd.secretName" -}}
{{- include "outboxd.fullname" . -}}
{{- end -}}

{{/* Whether the chart creates its Secret ("true" or ""). */}}
{{- define "outboxd.createSecret" -}}
{{- if or (and .Values.postgresql.password (not .Values.postgresql.existingSecret)) (and .Values.kafka.sasl.password (not .Values.kafka.sasl.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{/* ---- checks ----------------------------------------------------------------------- */}}

{{- define "outboxd.validate" -}}
{{- $mode := include "outboxd.configMode" . -}}
{{- if and .Values.connector.enabled .Values.existingConfigMap -}}
{{- fail "set either connector.enabled or existingConfigMap, not both" -}}
{{- end -}}
{{- if eq $mode "values" -}}
{{- if not (kindIs "string" .Values.config) -}}
{{- $source := (.Values.config | default dict).source | default dict -}}
{{- if not $source.url -}}
{{- fail "config.source.url is required (postgres://user@host:5432/db; the password from postgresql.password or postgresql.existingSecret)" -}}
{{- end -}}
{{- if regexMatch "^postgres(ql)?://[^/@]*:[^/@]*@" (toString $source.url) -}}
{{- fail "config.source.url carries a password: give it as postgresql.password or postgresql.existingSecret (PGPASSWORD) instead" -}}
{{- end -}}
{{- $kafka := (.Values.config | default dict).kafka | default dict -}}
{{- if and (not (get $kafka "bootstrap.servers")) (not .Values.kafka.bootstrapServers) -}}
{{- fail "config.kafka.\"bootstrap.servers\" (or kafka.bootstrapServers) is required" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $mode "connector") (not .Values.connector.existingConfigMap) -}}
{{- if not .Values.connector.json -}}
{{- fail "connector.enabled: give the connector's JSON as connector.json, or connector.existingConfigMap" -}}
{{- end -}}
{{- $json := include "outboxd.connectorJson" . -}}
{{- if and (not .Values.kafka.bootstrapServers) (not (contains "bootstrap.servers" .Values.connector.workerProperties)) (not (contains "producer.override.bootstrap.servers" $json)) -}}
{{- fail "connector mode needs the Kafka bootstrap servers: set kafka.bootstrapServers, or give connector.workerProperties with bootstrap.servers" -}}
{{- end -}}
{{- end -}}
{{- if and (eq (int .Values.replicaCount) 1) (eq (toString (dig "type" "" .Values.updateStrategy)) "RollingUpdate") -}}
{{- if ne (toString (dig "rollingUpdate" "maxSurge" "" .Values.updateStrategy)) "0" -}}
{{- fail "replicaCount 1 with a RollingUpdate that surges deadlocks: the new pod stands by on the slot the old one holds and never becomes ready. Use Recreate (the default), or rollingUpdate.maxSurge 0" -}}
{{- end -}}
{{- end -}}
{{- end -}}

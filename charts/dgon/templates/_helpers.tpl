{{/*
Named helpers of the dgon chart. Helpers that concern one component take a dict:
  (dict "root" $ "component" "api")
where component is api, operator, dashboard, postgresql, metrics or test.
*/}}

{{/* Chart name ("dgon" unless nameOverride). */}}
{{- define "dgon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: the release name when it already contains the chart name, else "<release>-<chart>".
Limited to 41 characters: "<fullname>-postgresql" must fit a StatefulSet name (52, because of the revision-hash label).
*/}}
{{- define "dgon.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := include "dgon.name" . -}}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- end -}}
{{- if gt (len $full) 41 -}}
{{- fail (printf "the object name prefix %q is %d characters long; the chart allows 41. Set fullnameOverride to a shorter name." $full (len $full)) -}}
{{- end -}}
{{- $full -}}
{{- end -}}

{{/* "<fullname>-<component>", e.g. dgon-api. */}}
{{- define "dgon.componentName" -}}
{{- printf "%s-%s" (include "dgon.fullname" .root) .component -}}
{{- end -}}

{{- define "dgon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: never change across upgrades (Deployment selectors are immutable). */}}
{{- define "dgon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dgon.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels; version is the component's image tag (DGON images, postgres), else the appVersion. */}}
{{- define "dgon.labels" -}}
helm.sh/chart: {{ include "dgon.chart" .root }}
{{ include "dgon.selectorLabels" . }}
{{- $version := .root.Chart.AppVersion }}
{{- if has .component (list "api" "operator" "dashboard") }}
{{- $version = include "dgon.imageTag" . }}
{{- else if eq .component "postgresql" }}
{{- $version = .root.Values.postgresql.bundled.image.tag }}
{{- end }}
app.kubernetes.io/version: {{ $version | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: dgon-console
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Image tag of a DGON component: component tag, else image.tag, else the chart's appVersion. */}}
{{- define "dgon.imageTag" -}}
{{- $values := index .root.Values .component -}}
{{- $values.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- end -}}

{{/* Full image reference of a DGON component: {registry}/{repository}:{tag}. */}}
{{- define "dgon.image" -}}
{{- $values := index .root.Values .component -}}
{{- $registry := .root.Values.image.registry | trimSuffix "/" -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry $values.image.repository (include "dgon.imageTag" .) -}}
{{- else -}}
{{- printf "%s:%s" $values.image.repository (include "dgon.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
Reference of a third-party image (values with repository, tag and optional digest): "{repository}:{tag}", or
"{repository}:{tag}@{digest}" when a digest is set (the runtime then pulls by digest; the tag is informative).
*/}}
{{- define "dgon.externalImage" -}}
{{- if .digest -}}
{{- printf "%s:%s@%s" .repository (toString .tag) .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}
{{- end -}}

{{/*
Optional pod spec fields: imagePullSecrets and scheduling (nodeSelector, tolerations, affinity, topology spread,
priority class) from the component's values (or .values). Without an explicit affinity, podAntiAffinityPreset "soft"
prefers other nodes and zones. Call as: with include ... | trim, so that nothing at all is written when empty.
*/}}
{{- define "dgon.podExtras" -}}
{{- $values := .values | default (index .root.Values .component) -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $values.affinity }}
affinity:
  {{- toYaml $values.affinity | nindent 2 }}
{{- else if eq ($values.podAntiAffinityPreset | default "none") "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "dgon.selectorLabels" . | nindent 14 }}
      - weight: 50
        podAffinityTerm:
          topologyKey: topology.kubernetes.io/zone
          labelSelector:
            matchLabels:
              {{- include "dgon.selectorLabels" . | nindent 14 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The /tmp emptyDir every container gets (read-only root filesystem). */}}
{{- define "dgon.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "dgon.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
"true" when the ServiceMonitor is rendered: enabled and the cluster serves monitoring.coreos.com/v1. Helm's capability
list holds both "group/version" and "group/version/Kind" for a live cluster, but only what --api-versions names
offline (Argo CD, helm template): either form counts.
*/}}
{{- define "dgon.serviceMonitorRendered" -}}
{{- $api := .Capabilities.APIVersions -}}
{{- if and .Values.metrics.serviceMonitor.enabled (or ($api.Has "monitoring.coreos.com/v1") ($api.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
true
{{- end -}}
{{- end -}}

{{/* prometheus.io/* pod annotations for api and operator, only when no ServiceMonitor scrapes them. */}}
{{- define "dgon.prometheusAnnotations" -}}
{{- if and .root.Values.metrics.prometheusAnnotations (not (include "dgon.serviceMonitorRendered" .root)) }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* ---------- PostgreSQL and DATABASE_URL ---------- */}}

{{/* Secret holding the bundled PostgreSQL password (key "password"). */}}
{{- define "dgon.postgresql.secretName" -}}
{{- printf "%s-postgresql" (include "dgon.fullname" .) -}}
{{- end -}}

{{/* Secret and key the api and operator read DATABASE_URL from, per postgresql.mode. */}}
{{- define "dgon.databaseUrl.secretName" -}}
{{- if eq .Values.postgresql.mode "external" -}}
{{- .Values.postgresql.external.existingSecret -}}
{{- else -}}
{{- printf "%s-database-url" (include "dgon.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "dgon.databaseUrl.secretKey" -}}
{{- if eq .Values.postgresql.mode "external" -}}
{{- .Values.postgresql.external.key -}}
{{- else -}}
DATABASE_URL
{{- end -}}
{{- end -}}

{{/*
Password of the bundled PostgreSQL: postgresql.bundled.password if set, else the one in the existing Secret (so it
survives upgrades), else a new random one. Computed once per render and remembered on the root context, so that the
password Secret, the DATABASE_URL Secret and the checksum annotations all agree.
*/}}
{{- define "dgon.postgresql.password" -}}
{{- if not (hasKey . "dgonPostgresqlPassword") -}}
{{- $password := .Values.postgresql.bundled.password -}}
{{- if not $password -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dgon.postgresql.secretName" .) -}}
{{- $password = dig "data" "password" "" $existing | b64dec -}}
{{- end -}}
{{- $_ := set . "dgonPostgresqlPassword" ($password | default (randAlphaNum 32)) -}}
{{- end -}}
{{- get . "dgonPostgresqlPassword" -}}
{{- end -}}

{{/* DATABASE_URL of the bundled PostgreSQL (in-cluster, no TLS). */}}
{{- define "dgon.postgresql.databaseUrl" -}}
{{- $b := .Values.postgresql.bundled -}}
{{- printf "postgres://%s:%s@%s:5432/%s?sslmode=disable" $b.username (include "dgon.postgresql.password" .) (include "dgon.postgresql.secretName" .) $b.database -}}
{{- end -}}

{{/*
checksum/database-url pod annotation: rolls the api and operator when the DATABASE_URL changes. Bundled: the URL the
chart writes. External: the referenced Secret's value as seen at install/upgrade time (lookup; empty offline).
*/}}
{{- define "dgon.databaseUrl.checksum" -}}
{{- if eq .Values.postgresql.mode "external" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.postgresql.external.existingSecret -}}
{{- printf "%s/%s/%s" .Values.postgresql.external.existingSecret .Values.postgresql.external.key (dig "data" .Values.postgresql.external.key "" $secret) | sha256sum -}}
{{- else -}}
{{- include "dgon.postgresql.databaseUrl" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* env entry DATABASE_URL from the Secret of the current postgresql.mode. */}}
{{- define "dgon.databaseUrl.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "dgon.databaseUrl.secretName" . }}
      key: {{ include "dgon.databaseUrl.secretKey" . }}
{{- end -}}

{{/* ---------- Admin token (DGON_ADMIN_TOKEN of the API) ---------- */}}

{{/* Name of the Secret the chart generates when admin.existingSecret is empty: "<fullname>-admin". */}}
{{- define "dgon.admin.generatedSecretName" -}}
{{- printf "%s-admin" (include "dgon.fullname" .) -}}
{{- end -}}

{{/* Secret and key the API reads DGON_ADMIN_TOKEN from. */}}
{{- define "dgon.admin.secretName" -}}
{{- .Values.admin.existingSecret | default (include "dgon.admin.generatedSecretName" .) -}}
{{- end -}}

{{- define "dgon.admin.secretKey" -}}
{{- ternary .Values.admin.existingSecretKey "token" (ne .Values.admin.existingSecret "") -}}
{{- end -}}

{{/*
The generated admin token: the one in the existing "<fullname>-admin" Secret (so that it survives upgrades), else a
new random one (48 alphanumerics, about 285 bits). Computed once per render and remembered on the root context, so
that the Secret and the checksum annotation agree.
*/}}
{{- define "dgon.admin.token" -}}
{{- if not (hasKey . "dgonAdminToken") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dgon.admin.generatedSecretName" .) -}}
{{- $token := dig "data" "token" "" $existing | b64dec -}}
{{- $_ := set . "dgonAdminToken" ($token | default (randAlphaNum 48)) -}}
{{- end -}}
{{- get . "dgonAdminToken" -}}
{{- end -}}

{{/*
checksum/admin-token pod annotation: rolls the API when the admin token changes. Generated: the token the chart
writes. Existing Secret: its value as seen at install/upgrade time (lookup; empty offline).
*/}}
{{- define "dgon.admin.checksum" -}}
{{- if .Values.admin.existingSecret -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.admin.existingSecret -}}
{{- printf "%s/%s/%s" .Values.admin.existingSecret .Values.admin.existingSecretKey (dig "data" .Values.admin.existingSecretKey "" $secret) | sha256sum -}}
{{- else -}}
{{- printf "%s/token/%s" (include "dgon.admin.generatedSecretName" .) (include "dgon.admin.token" .) | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* env entry DGON_ADMIN_TOKEN from the generated or the existing Secret. */}}
{{- define "dgon.admin.env" -}}
- name: DGON_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "dgon.admin.secretName" . }}
      key: {{ include "dgon.admin.secretKey" . }}
{{- end -}}

{{/* ---------- Management port (/metrics of the API) ---------- */}}

{{/* The API's management port (api.managementPort), or "" when it is off (null or 0). */}}
{{- define "dgon.api.managementPort" -}}
{{- $port := .Values.api.managementPort -}}
{{- if and (not (kindIs "invalid" $port)) (gt (int $port) 0) -}}
{{- int $port -}}
{{- end -}}
{{- end -}}

{{/* Container port of the API's /metrics: the management port when on, else 8001. */}}
{{- define "dgon.api.metricsPort" -}}
{{- include "dgon.api.managementPort" . | default "8001" -}}
{{- end -}}

{{/* ---------- Accounts (issue 12) and OIDC ---------- */}}

{{/* env entries of the API's account settings (accounts.*, api.rateLimits.login/signup). */}}
{{- define "dgon.accounts.apiEnv" -}}
{{- $a := .Values.accounts -}}
- name: DGON_OPEN_READS
  value: {{ $a.openReads | toString | quote }}
- name: DGON_SIGNUP
  value: {{ $a.signup.enabled | toString | quote }}
- name: DGON_SIGNUP_ROLE
  value: {{ $a.signup.role | quote }}
- name: DGON_SESSION_HOURS
  value: {{ $a.sessionHours | toString | quote }}
- name: DGON_AUTO_BAN_FAILURES
  value: {{ $a.autoBan.failures | int | toString | quote }}
- name: DGON_AUTO_BAN_WINDOW_SECONDS
  value: {{ $a.autoBan.windowSeconds | int | toString | quote }}
- name: DGON_AUTO_BAN_SECONDS
  value: {{ $a.autoBan.banSeconds | int | toString | quote }}
- name: DGON_RATE_LIMIT_LOGIN
  value: {{ .Values.api.rateLimits.login | quote }}
- name: DGON_RATE_LIMIT_SIGNUP
  value: {{ .Values.api.rateLimits.signup | quote }}
{{- end -}}

{{/* "true" when single sign-on is configured (oidc.authority set). */}}
{{- define "dgon.oidc.enabled" -}}
{{- if .Values.oidc.authority -}}
true
{{- end -}}
{{- end -}}

{{/* Name of the Secret the chart writes oidc.clientSecret into: "<fullname>-oidc". */}}
{{- define "dgon.oidc.generatedSecretName" -}}
{{- printf "%s-oidc" (include "dgon.fullname" .) -}}
{{- end -}}

{{/* Secret and key of the client secret: oidc.existingSecret, else the generated one when oidc.clientSecret is set, else "". */}}
{{- define "dgon.oidc.secretName" -}}
{{- if .Values.oidc.existingSecret -}}
{{- .Values.oidc.existingSecret -}}
{{- else if .Values.oidc.clientSecret -}}
{{- include "dgon.oidc.generatedSecretName" . -}}
{{- end -}}
{{- end -}}

{{- define "dgon.oidc.secretKey" -}}
{{- ternary .Values.oidc.existingSecretKey "client-secret" (ne .Values.oidc.existingSecret "") -}}
{{- end -}}

{{/* env entries DGON_OIDC_* that the API and the dashboard share (no client secret), when oidc.authority is set. */}}
{{- define "dgon.oidc.env" -}}
{{- if include "dgon.oidc.enabled" . -}}
{{- $o := .Values.oidc -}}
- name: DGON_OIDC_AUTHORITY
  value: {{ $o.authority | quote }}
- name: DGON_OIDC_CLIENT_ID
  value: {{ $o.clientId | quote }}
- name: DGON_OIDC_ROLE_CLAIM
  value: {{ $o.roleClaim | quote }}
- name: DGON_OIDC_ADMIN_VALUES
  value: {{ join "," $o.adminValues | quote }}
- name: DGON_OIDC_OPERATOR_VALUES
  value: {{ join "," $o.operatorValues | quote }}
- name: DGON_OIDC_DISPLAY_NAME
  value: {{ $o.displayName | quote }}
- name: DGON_OIDC_SCOPES
  value: {{ join " " $o.scopes | quote }}
{{- end -}}
{{- end -}}

{{/* env entry DGON_OIDC_CLIENT_SECRET of the dashboard, from the Secret (nothing when there is no client secret). */}}
{{- define "dgon.oidc.secretEnv" -}}
{{- if and (include "dgon.oidc.enabled" .) (include "dgon.oidc.secretName" .) -}}
- name: DGON_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "dgon.oidc.secretName" . }}
      key: {{ include "dgon.oidc.secretKey" . }}
{{- end -}}
{{- end -}}

{{/*
checksum/oidc-client-secret pod annotation of the dashboard: rolls it when the client secret changes. Inline: the
value the chart writes. Existing Secret: its value as seen at install/upgrade time (lookup; empty offline).
*/}}
{{- define "dgon.oidc.checksum" -}}
{{- if .Values.oidc.existingSecret -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.oidc.existingSecret -}}
{{- printf "%s/%s/%s" .Values.oidc.existingSecret .Values.oidc.existingSecretKey (dig "data" .Values.oidc.existingSecretKey "" $secret) | sha256sum -}}
{{- else -}}
{{- printf "%s/client-secret/%s" (include "dgon.oidc.generatedSecretName" .) .Values.oidc.clientSecret | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* "true" when the API ingress is rendered with TLS (agents reach the API over https): HSTS applies. */}}
{{- define "dgon.api.tlsIngress" -}}
{{- if and .Values.ingress.api.enabled .Values.ingress.api.tls.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* ---------- URLs (NOTES, CORS) ---------- */}}

{{/* Public URL of an ingress ("api" or "dashboard"): https when TLS is on; empty host → empty. */}}
{{- define "dgon.ingressUrl" -}}
{{- $ing := index .root.Values.ingress .component -}}
{{- if $ing.host -}}
{{- printf "%s://%s" ($ing.tls.enabled | ternary "https" "http") $ing.host -}}
{{- end -}}
{{- end -}}

{{/* CORS_ORIGIN of the API. */}}
{{- define "dgon.api.corsOrigin" -}}
{{- if .Values.api.corsOrigin -}}
{{- .Values.api.corsOrigin -}}
{{- else if and .Values.dashboard.enabled .Values.ingress.dashboard.enabled .Values.ingress.dashboard.host -}}
{{- include "dgon.ingressUrl" (dict "root" . "component" "dashboard") -}}
{{- else -}}
http://localhost:3000
{{- end -}}
{{- end -}}

{{/* ---------- Validation: fails the render with a message saying what to set ---------- */}}
{{- define "dgon.validate" -}}
{{- if and (eq .Values.postgresql.mode "external") (not .Values.postgresql.external.existingSecret) -}}
{{- fail "postgresql.mode is \"external\" but postgresql.external.existingSecret is empty: create a Secret in the release namespace holding the database URL (kubectl create secret generic dgon-database --from-literal=DATABASE_URL='postgres://USER:PASSWORD@HOST:5432/dgon?sslmode=require') and set postgresql.external.existingSecret=dgon-database (and postgresql.external.key if the key is not DATABASE_URL)" -}}
{{- end -}}
{{- if and .Values.ingress.dashboard.enabled (not .Values.dashboard.enabled) -}}
{{- fail "ingress.dashboard.enabled is true but dashboard.enabled is false: enable the dashboard or disable its ingress" -}}
{{- end -}}
{{- $life := .Values.lifecycle -}}
{{- if gt (mul 2 (int $life.statusRefreshSeconds)) (int $life.heartbeatGraceSeconds) -}}
{{- fail (printf "lifecycle.statusRefreshSeconds (%v) must be at most half of lifecycle.heartbeatGraceSeconds (%v): the recorded last heartbeat may lag the real one by the refresh interval, and a healthy node must never look overdue" $life.statusRefreshSeconds $life.heartbeatGraceSeconds) -}}
{{- end -}}
{{- $api := .Values.ingress.api -}}
{{- if and $api.enabled (not $api.tls.enabled) (not $api.allowInsecureHttp) -}}
{{- fail "ingress.api.enabled is true but ingress.api.tls.enabled is false: registration returns each node's token in the response, so over plain HTTP anyone on the path can read it. Turn TLS on (ingress.api.tls.enabled=true and a TLS Secret in ingress.api.tls.secretName, filled by cert-manager or created with kubectl create secret tls), disable the ingress (ingress.api.enabled=false), or, where the HTTP hop cannot be observed (a local test cluster, TLS terminated in front of the ingress controller), set ingress.api.allowInsecureHttp=true" -}}
{{- end -}}
{{- $o := .Values.oidc -}}
{{- if and $o.authority (not $o.clientId) -}}
{{- fail "oidc.authority is set but oidc.clientId is empty: give the client id the dashboard is registered with at the identity provider (the ID token's audience)" -}}
{{- end -}}
{{- if and $o.existingSecret $o.clientSecret -}}
{{- fail "oidc.existingSecret and oidc.clientSecret are both set: keep the client secret in one place (preferably the existing Secret) and leave the other empty" -}}
{{- end -}}
{{- if and .Values.dashboard.enabled (gt (int .Values.dashboard.replicas) 1) (not .Values.dashboard.dataDir.existingClaim) -}}
{{- fail (printf "dashboard.replicas is %v but dashboard.dataDir.existingClaim is empty: each replica would keep its own data-protection key ring in an emptyDir, so a sign-in cookie made by one replica is refused by the others. Create a ReadWriteMany PersistentVolumeClaim and set dashboard.dataDir.existingClaim to its name, or run one replica" .Values.dashboard.replicas) -}}
{{- end -}}
{{- range $component := list "api" "dashboard" -}}
{{- $ing := index $.Values.ingress $component -}}
{{- if and $ing.enabled $ing.tls.enabled (not $ing.host) -}}
{{- fail (printf "ingress.%s.tls.enabled is true but ingress.%s.host is empty: TLS needs a host name" $component $component) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* PodDisruptionBudget of a component: maxUnavailable when set, else minAvailable. */}}
{{- define "dgon.podDisruptionBudget" -}}
{{- $pdb := (index .root.Values .component).podDisruptionBudget -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "dgon.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dgon.labels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.maxUnavailable) | and (ne (toString $pdb.maxUnavailable) "") }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "dgon.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/*
Ingress of "api" (prefix /v1 only) or "dashboard" (everything) to the component's Service port "http".
*/}}
{{- define "dgon.ingress" -}}
{{- $ing := index .root.Values.ingress .component -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "dgon.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dgon.labels" . | nindent 4 }}
  {{- with $ing.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if $ing.tls.enabled }}
  tls:
    - hosts:
        - {{ $ing.host | quote }}
      secretName: {{ $ing.tls.secretName | default (printf "%s-tls" (include "dgon.componentName" .)) }}
  {{- end }}
  rules:
    {{- if $ing.host }}
    - host: {{ $ing.host | quote }}
      http:
    {{- else }}
    - http:
    {{- end }}
        paths:
          - path: {{ .path }}
            pathType: Prefix
            backend:
              service:
                name: {{ include "dgon.componentName" . }}
                port:
                  name: http
{{- end -}}

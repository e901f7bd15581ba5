{{/*
Rules shared by the NetworkPolicies. Each renders list items of an ingress or egress section. They take the root
context unless said otherwise.
*/}}

{{/* Egress to the cluster DNS (networkPolicy.dns.to) on UDP and TCP 53. */}}
{{- define "dgon.networkPolicy.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.to | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{/* Egress to the Kubernetes API server: networkPolicy.kubeApiServer.cidrs on its ports (TCP). */}}
{{- define "dgon.networkPolicy.kubeApiServerEgress" -}}
{{- $k := .Values.networkPolicy.kubeApiServer -}}
- to:
    {{- range $k.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
  ports:
    {{- range $k.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}

{{/* Egress to PostgreSQL: the bundled pod on 5432, or networkPolicy.externalPostgresql (TCP). */}}
{{- define "dgon.networkPolicy.postgresqlEgress" -}}
{{- if eq .Values.postgresql.mode "bundled" }}
- to:
    - podSelector:
        matchLabels:
          {{- include "dgon.selectorLabels" (dict "root" . "component" "postgresql") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 5432
{{- else }}
{{- $pg := .Values.networkPolicy.externalPostgresql }}
- to:
    {{- range $pg.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ $pg.port }}
{{- end }}
{{- end -}}

{{/* Egress to the identity provider (networkPolicy.oidc cidrs and ports, TCP), only while oidc.authority is set. */}}
{{- define "dgon.networkPolicy.oidcEgress" -}}
{{- if include "dgon.oidc.enabled" . }}
{{- $o := .Values.networkPolicy.oidc }}
- to:
    {{- range $o.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
  ports:
    {{- range $o.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Egress to the API pods on their http port (8001). */}}
{{- define "dgon.networkPolicy.apiEgress" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "dgon.selectorLabels" (dict "root" . "component" "api") | nindent 10 }}
  ports:
    - protocol: TCP
      port: 8001
{{- end -}}

{{/* A pod selector of this release's pods of one component (dict "root" $ "component" name). */}}
{{- define "dgon.networkPolicy.podsOf" -}}
- podSelector:
    matchLabels:
      {{- include "dgon.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/*
Metadata and pod selector of a component's NetworkPolicy (dict "root" $ "component" name), followed by
policyTypes Ingress and Egress: a section the policy leaves out therefore allows nothing.
*/}}
{{- define "dgon.networkPolicy.header" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "dgon.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dgon.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "dgon.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
{{- end -}}

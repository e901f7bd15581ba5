using System.Net.Http.Headers;
using System.Text;
using Dgon.Domain.Auth;
using Dgon.Testing;

namespace Dgon.Api.Tests;

/// <summary>
/// Issue 9's bad-input campaign: a few thousand hostile requests over every endpoint, generated from a fixed seed
/// (so a failure reproduces), signed properly where the endpoint needs it so the hostile part reaches the parser and
/// the store. Every answer must be below 500, and every 4xx must be <c>application/problem+json</c>.
/// </summary>
public sealed class BadInputCampaignTests(ApiFixture fx) : IClassFixture<ApiFixture>
{
    private static readonly string[] HostileStrings =
    [
        "", " ", "\u0000", "a\u0000b", "\ud800", "\udfff\ud800", "\u202e", "\u0007bell", new('x', 70_000), new('y', 300), "null", "true",
        "0x" + new string('f', 200), "../../etc/passwd", "'; DROP TABLE nodes; --", "%00", "<script>", "ed25519:", "ed25519:" + new string('A', 44),
        "AAAAAA.BBBBBBBBBBBBBBBB", "abcdef.0123456789abcdef", "ZZZZZZ", "😀😀", "Ünïcödé", "-", "a-", "-a", "A", new('a', 64),
    ];

    private static readonly string[] HostileNumbers = ["-1", "0", "1e400", "-1e400", "1.5", "99999999999999999999999", "NaN", "\"1\"", "null", "[]", "{}", "true", "2147483648", "-0"];

    private static readonly string[] Fields =
        ["node_id", "region", "runtime", "asn_hint", "wallet_address", "green_energy", "public_key", "ready", "gpu_util", "mem_used_gb", "p95_ms",
         "id", "model_id", "payload", "ttl_seconds", "max_uses", "description"];

    [Fact]
    public async Task Hostile_requests_get_no_5xx_and_every_4xx_is_problem_json()
    {
        var random = new Random(9_2026);
        // Node 0 takes the key-signed requests (they replace its token); the others the HMAC-signed ones, in turn, so
        // their strictly increasing timestamps stay inside the 120 s window.
        var nodes = new List<TestNode>();
        for (var n = 0; n < 16; n++)
        {
            nodes.Add(await TestNode.RegisterAsync(fx.Client, ApiFixture.NewNodeId("fuzz")));
        }

        var joinToken = await TestNode.SharedJoinTokenAsync(fx.Client);
        var failures = new List<string>();
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < 3000; i++)
        {
            using var request = Build(random, nodes, joinToken, out var description);
            HttpResponseMessage response;
            try
            {
                response = await fx.Client.SendAsync(request);
            }
            catch (HttpRequestException e)
            {
                failures.Add($"#{i} {description}: connection failed: {e.Message}");
                continue;
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                statuses[status] = statuses.GetValueOrDefault(status) + 1;
                if (status >= 500)
                {
                    failures.Add($"#{i} {description}: {status} {await response.Content.ReadAsStringAsync()}");
                }
                else if (status >= 400 && response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                {
                    failures.Add($"#{i} {description}: {status} with Content-Type {response.Content.Headers.ContentType}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', fx.Api.Output.Where(l => l.Contains("Exception", StringComparison.Ordinal)).Take(6)) + $"\n{failures.Count} bad answers (statuses {string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}"))}):\n" + string.Join('\n', failures.Take(30)));
        // The campaign reached past authentication: some hostile bodies were judged by the validator, some accepted.
        Assert.True(statuses.GetValueOrDefault(422) > 50, $"statuses: {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}");
        Assert.True(statuses.GetValueOrDefault(200) + statuses.GetValueOrDefault(201) > 20, $"statuses: {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}");
        // And a fuzzed node still works.
        using var hb = await nodes[1].HeartbeatAsync(ready: true);
        Assert.Equal(System.Net.HttpStatusCode.OK, hb.StatusCode);
    }

    private static HttpRequestMessage Build(Random random, List<TestNode> nodes, string joinToken, out string description)
    {
        var node = nodes[1 + random.Next(nodes.Count - 1)];
        var kind = random.Next(10);
        switch (kind)
        {
            case 0:
            {
                // Node listing and summary with hostile queries.
                var query = string.Join('&', Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
                    Pick(random, ["limit", "cursor", "status", "region", "x"]) + "=" + Uri.EscapeDataString(Pick(random, HostileStrings.Concat(HostileNumbers).Where(s => s.Length < 2000).ToArray()))));
                var path = (random.Next(2) == 0 ? "/v1/nodes?" : "/v1/summary?") + query;
                description = "GET " + path[..Math.Min(200, path.Length)];
                var read = new HttpRequestMessage(HttpMethod.Get, path);
                if (random.Next(4) != 0)
                {
                    // Reads need a credential (issue 12); most hostile queries come with one so they reach the query parser.
                    read.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
                }

                return read;
            }

            case 1:
            {
                // Wrong methods and unknown or hostile paths.
                var method = Pick(random, [HttpMethod.Put, HttpMethod.Patch, HttpMethod.Delete, HttpMethod.Get, HttpMethod.Options]);
                // (No %00 in paths: Kestrel answers a NUL in the request target with a bare 400 at the protocol level,
                // before any application code runs.)
                var path = Pick(random, ["/v1/nodes/register", "/v1/nodes/heartbeat", "/v1/receipts", "/v1/admin/join-tokens", "/v1/nodes/%01", "/v1/admin/join-tokens/%ff%fe", "/v1/admin/nodes/%2e%2e/reset-key", "/v1/../admin", "/v1/nodes/rotate-token"]);
                description = $"{method} {path}";
                var request = new HttpRequestMessage(method, path);
                if (random.Next(2) == 0)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
                }

                return request;
            }

            case 2 or 3:
            {
                // Signed heartbeats and receipts with hostile bodies (signature valid, so the body reaches the parser).
                var path = random.Next(2) == 0 ? "/v1/nodes/heartbeat" : "/v1/receipts";
                var body = HostileBody(random, path == "/v1/receipts" ? ReceiptTemplate(node.NodeId) : """{"ready":true,"gpu_util":0.5,"mem_used_gb":1,"p95_ms":10}""");
                description = $"signed POST {path} {Clip(body)}";
                var bytes = Encoding.UTF8.GetBytes(body);
                var request = Json(path, bytes, random);
                var ts = path == "/v1/receipts" ? DateTimeOffset.UtcNow.ToUnixTimeSeconds() : node.NextTs(); // receipts are not clocked
                foreach (var (name, value) in node.Sign(path, bytes, ts))
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                return request;
            }

            case 4:
            {
                // Hostile authentication headers.
                var path = Pick(random, ["/v1/nodes/heartbeat", "/v1/receipts", "/v1/nodes/rotate-token", "/v1/nodes/register"]);
                var request = Json(path, Encoding.UTF8.GetBytes("{\"ready\":true}"), random);
                foreach (var header in new[] { NodeAuth.NodeIdHeader, NodeAuth.TimestampHeader, NodeAuth.SignatureHeader, NodeKeyProof.ProofHeader, "Authorization", "X-Forwarded-For" })
                {
                    if (random.Next(3) > 0)
                    {
                        var value = Pick(random, HostileStrings.Concat(HostileNumbers).Concat([node.NodeId, "v2=" + new string('0', 64), "ed25519=" + Convert.ToBase64String(new byte[64]), "Bearer " + joinToken, "Bearer x"]).ToArray());
                        // HttpClient refuses non-ASCII header values before sending; those never reach a server.
                        var ascii = new string(value.Where(c => c is >= ' ' and <= '~').ToArray());
                        request.Headers.TryAddWithoutValidation(header, ascii.Length > 8000 ? ascii[..8000] : ascii);
                    }
                }

                description = $"POST {path} with hostile auth headers";
                return request;
            }

            case 5 or 6:
            {
                // Registrations with hostile bodies and a valid join token.
                var body = HostileBody(random, $$"""{"node_id":"{{ApiFixture.NewNodeId("fz")}}","region":"eu","runtime":"ollama","asn_hint":"AS1","wallet_address":"0x1","green_energy":true}""");
                description = $"POST /v1/nodes/register {Clip(body)}";
                var request = Json("/v1/nodes/register", Encoding.UTF8.GetBytes(body), random);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", random.Next(4) == 0 ? ApiHost.AdminToken : joinToken);
                return request;
            }

            case 7:
            {
                // Admin: join tokens with hostile bodies.
                var body = HostileBody(random, """{"ttl_seconds":3600,"max_uses":3,"description":"fuzz","region":"eu"}""");
                description = $"POST /v1/admin/join-tokens {Clip(body)}";
                var request = Json("/v1/admin/join-tokens", Encoding.UTF8.GetBytes(body), random);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
                return request;
            }

            case 8:
            {
                // Admin: revoke and reset with hostile ids.
                var id = Uri.EscapeDataString(Pick(random, HostileStrings.Where(s => s.Length is > 0 and < 500 && !s.Contains('\0', StringComparison.Ordinal)).ToArray()));
                var request = random.Next(2) == 0
                    ? new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/join-tokens/{id}")
                    : Json($"/v1/admin/nodes/{id}/reset-key", "{}"u8.ToArray(), random);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiHost.AdminToken);
                description = $"{request.Method} {request.RequestUri}";
                return request;
            }

            default:
            {
                // Key-signed rotation and re-registration with hostile bodies, signed with the node's key.
                node = nodes[0];
                var path = random.Next(2) == 0 ? "/v1/nodes/rotate-token" : "/v1/nodes/register";
                var body = HostileBody(random, path == "/v1/nodes/register"
                    ? $$"""{"node_id":"{{node.NodeId}}","region":"ap-southeast","runtime":"ollama","public_key":"{{node.PublicKey}}"}"""
                    : "{}");
                var bytes = Encoding.UTF8.GetBytes(body);
                var request = Json(path, bytes, random);
                foreach (var (name, value) in NodeKeyProof.SignHeaders(node.Key, node.NodeId, "POST", path, bytes, node.NextTs()))
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                description = $"key-signed POST {path} {Clip(body)}";
                return request;
            }
        }
    }

    private static string ReceiptTemplate(string nodeId) =>
        $$$"""{"id":"r-{{{Guid.NewGuid():N}}}","node_id":"{{{nodeId}}}","region":"eu","model_id":"m","payload":{"tokens_input":1,"note":"x","list":[1,2]}}""";

    /// <summary>A template body with one to three hostile edits: a field replaced, removed or added, or the text mangled.</summary>
    private static string HostileBody(Random random, string template)
    {
        var body = template;
        for (var edits = random.Next(1, 4); edits > 0; edits--)
        {
            var field = Pick(random, Fields);
            var value = random.Next(3) switch
            {
                0 => System.Text.Json.JsonSerializer.Serialize(Pick(random, HostileStrings)),
                1 => Pick(random, HostileNumbers),
                _ => Pick(random, ["{\"a\":\"\\u0000\"}", "[\"\\u0000\"]", "{\"\\u0000\":1}", new string('[', 200) + new string(']', 200), "{\"k\":" + new string('[', 70) + new string(']', 70) + "}", "\"\\ud800\""]),
            };
            body = random.Next(6) switch
            {
                0 or 1 or 2 => ReplaceField(body, field, value),
                3 => body.Length > 2 ? body[..random.Next(1, body.Length)] : body,
                4 => body.Length > 1 ? body.Insert(1, $"\"{field}\":{value},") : body,
                _ => Pick(random, ["", "null", "[]", "\"str\"", "{", "{}}", "\u0000", "{\"a\":1,\"a\":2}", "\ufeff{}", "{\"ready\":true}\u0000"]),
            };
        }

        return body;
    }

    private static string ReplaceField(string body, string field, string value)
    {
        var at = body.IndexOf($"\"{field}\":", StringComparison.Ordinal);
        if (at < 0)
        {
            return body.Length > 1 ? body.Insert(1, $"\"{field}\":{value},") : body;
        }

        var start = at + field.Length + 3;
        var depth = 0;
        var end = start;
        var inString = false;
        for (; end < body.Length; end++)
        {
            var c = body[end];
            if (inString)
            {
                if (c == '\\')
                {
                    end++;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (c == '"')
            {
                inString = true;
            }
            else if (c is '{' or '[')
            {
                depth++;
            }
            else if (c is '}' or ']')
            {
                if (depth == 0)
                {
                    break;
                }

                depth--;
            }
            else if (c == ',' && depth == 0)
            {
                break;
            }
        }

        return body[..start] + value + body[end..];
    }

    private static HttpRequestMessage Json(string path, byte[] body, Random random)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        var type = random.Next(12) switch
        {
            0 => null,
            1 => "text/plain",
            2 => "application/json; charset=utf-16",
            3 => "application/x-www-form-urlencoded",
            4 => "application/problem+json",
            _ => "application/json",
        };
        if (type is not null)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
        }

        return request;
    }

    private static T Pick<T>(Random random, T[] items) => items[random.Next(items.Length)];

    private static string Clip(string text) => text.Length > 120 ? text[..120] + "…" : text;
}

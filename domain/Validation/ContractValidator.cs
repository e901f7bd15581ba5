using System.Text.Json;
using System.Text.RegularExpressions;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Domain.Validation;

/// <summary>
/// Field rules of the v1 contract. Each method returns the errors keyed by the JSON field name
/// (empty when valid), in the shape of RFC 9457 validation problem details.
/// </summary>
public static partial class ContractValidator
{
    /// <summary>Kubernetes object names for DgonNodes: a lowercase RFC 1123 label, at most 63 characters.</summary>
    public const int MaxNodeIdLength = 63;

    /// <summary>Longest free-text hint (asn_hint, wallet_address).</summary>
    public const int MaxHintLength = 128;

    /// <summary>Whether <paramref name="nodeId"/> is a lowercase RFC 1123 label of 1–63 characters.</summary>
    public static bool IsValidNodeId(string? nodeId) =>
        nodeId is { Length: > 0 and <= MaxNodeIdLength } && Rfc1123Label().IsMatch(nodeId);

    /// <summary>Whether <paramref name="region"/> is a valid Kubernetes label value of 1–63 characters.</summary>
    public static bool IsValidRegion(string? region) =>
        region is { Length: > 0 and <= 63 } && LabelValue().IsMatch(region);

    /// <summary>Validates a registration body (seed 000 register; issue 2 name and runtime rules).</summary>
    public static Dictionary<string, string[]> Validate(RegisterRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        CheckNodeId(errors, "node_id", request.NodeId);
        CheckRegion(errors, "region", request.Region);
        if (request.Runtime is null)
        {
            errors["runtime"] = ["is required"];
        }
        else if (!NodeRuntimes.TryParse(request.Runtime, out _))
        {
            errors["runtime"] = [$"must be one of {string.Join(", ", NodeRuntimes.All.Select(r => r.ToWire()))}"];
        }

        CheckOptionalText(errors, "asn_hint", request.AsnHint, MaxHintLength);
        CheckOptionalText(errors, "wallet_address", request.WalletAddress, MaxHintLength);
        if (request.PublicKey is not null && !Auth.NodeKeyProof.IsValidPublicKey(request.PublicKey))
        {
            errors["public_key"] = ["must be 'ed25519:' followed by the base64 of a 32-byte Ed25519 public key"];
        }

        return errors;
    }

    /// <summary>Validates a join-token creation body (issue 9): ttl 60 s–365 d, max_uses 1–1,000,000, description ≤ 256 printable, region a label value.</summary>
    public static Dictionary<string, string[]> Validate(JoinTokenCreateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request.TtlSeconds is { } ttl && (ttl < 60 || ttl > (long)Auth.JoinTokens.MaxTtl.TotalSeconds))
        {
            errors["ttl_seconds"] = [$"must be an integer from 60 to {(long)Auth.JoinTokens.MaxTtl.TotalSeconds} (365 days)"];
        }

        if (request.MaxUses is { } uses && uses is < 1 or > 1_000_000)
        {
            errors["max_uses"] = ["must be an integer from 1 to 1000000"];
        }

        CheckOptionalText(errors, "description", request.Description, Auth.JoinTokens.MaxDescriptionLength);
        if (request.Region is not null)
        {
            CheckRegion(errors, "region", request.Region);
        }

        return errors;
    }

    /// <summary>Validates a heartbeat body: <c>ready</c> required; gpu_util in [0, 1]; mem_used_gb and p95_ms finite and ≥ 0.</summary>
    public static Dictionary<string, string[]> Validate(HeartbeatRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request.Ready is null)
        {
            errors["ready"] = ["is required (true or false)"];
        }

        CheckRange(errors, "gpu_util", request.GpuUtil, 0, 1, "must be a ratio between 0 and 1");
        CheckRange(errors, "mem_used_gb", request.MemUsedGb, 0, 1_000_000, "must be between 0 and 1000000 (gigabytes)");
        CheckRange(errors, "p95_ms", request.P95Ms, 0, 86_400_000, "must be between 0 and 86400000 (milliseconds)");
        return errors;
    }

    /// <summary>Validates a receipt body: id, node_id, region, model_id required and well-formed; payload a JSON object.</summary>
    public static Dictionary<string, string[]> Validate(ReceiptRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(request.Id))
        {
            errors["id"] = ["is required"];
        }
        else if (request.Id.Length > 128 || !ReceiptId().IsMatch(request.Id))
        {
            errors["id"] = ["must be 1-128 characters of letters, digits, '.', '_', ':' or '-'"];
        }

        CheckNodeId(errors, "node_id", request.NodeId);
        CheckRegion(errors, "region", request.Region);
        if (string.IsNullOrEmpty(request.ModelId))
        {
            errors["model_id"] = ["is required"];
        }
        else
        {
            CheckOptionalText(errors, "model_id", request.ModelId, 256);
        }

        if (request.Payload is not { ValueKind: JsonValueKind.Object } payload)
        {
            errors["payload"] = ["is required and must be a JSON object"];
        }
        else if (FindUnstorableText(payload, "payload") is { } where)
        {
            // PostgreSQL's jsonb (and text) cannot hold U+0000 or a lone surrogate: refuse it here, naming the field, instead of a 500.
            errors[where] = [UnstorableTextMessage];
        }

        return errors;
    }

    /// <summary>The message for a string <see cref="FindUnstorableText"/> finds.</summary>
    public const string UnstorableTextMessage = "must not contain U+0000 or unpaired surrogates (\\ud800-\\udfff); PostgreSQL cannot store them";

    /// <summary>
    /// The path (<c>a.b[2]</c>) of the first string or property name under <paramref name="element"/> that PostgreSQL
    /// cannot store: one holding U+0000 or an unpaired UTF-16 surrogate (jsonb and text refuse both); null when none.
    /// </summary>
    public static string? FindUnstorableText(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return TryGetString(element, out var text) && !IsUnstorable(text) ? null : path;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = property.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        return path + ".?"; // an escaped lone surrogate that .NET cannot even decode
                    }

                    var child = path + "." + new string(name.Select(c => char.IsControl(c) || char.IsSurrogate(c) ? '?' : c).ToArray());
                    if (IsUnstorable(name))
                    {
                        return child;
                    }

                    if (FindUnstorableText(property.Value, child) is { } found)
                    {
                        return found;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindUnstorableText(item, $"{path}[{i++}]") is { } found)
                    {
                        return found;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    // JsonElement.GetString throws for an escaped lone surrogate ("\ud800") instead of returning it.
    private static bool TryGetString(JsonElement element, out string text)
    {
        try
        {
            text = element.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            text = "";
            return false;
        }
    }

    private static bool IsUnstorable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0' || char.IsLowSurrogate(c))
            {
                return true;
            }

            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                {
                    return true;
                }

                i++;
            }
        }

        return false;
    }

    private static void CheckNodeId(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            errors[field] = ["is required"];
        }
        else if (!IsValidNodeId(value))
        {
            errors[field] = ["must be a lowercase RFC 1123 label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"];
        }
    }

    private static void CheckRegion(Dictionary<string, string[]> errors, string field, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            errors[field] = ["is required"];
        }
        else if (!IsValidRegion(value))
        {
            errors[field] = ["must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"];
        }
    }

    private static void CheckOptionalText(Dictionary<string, string[]> errors, string field, string? value, int maxLength)
    {
        if (value is null)
        {
            return;
        }

        if (value.Length > maxLength)
        {
            errors[field] = [$"must be at most {maxLength} characters"];
        }
        else if (value.Any(char.IsControl))
        {
            errors[field] = ["must not contain control characters"];
        }
    }

    private static void CheckRange(Dictionary<string, string[]> errors, string field, double? value, double min, double max, string message)
    {
        if (value is { } v && (!double.IsFinite(v) || v < min || v > max))
        {
            errors[field] = [message];
        }
    }

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\z", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc1123Label();

    [GeneratedRegex(@"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelValue();

    [GeneratedRegex(@"^[A-Za-z0-9._:-]+\z", RegexOptions.CultureInvariant)]
    private static partial Regex ReceiptId();
}

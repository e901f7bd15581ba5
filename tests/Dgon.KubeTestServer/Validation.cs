using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Dgon.KubeTestServer;

/// <summary>ObjectMeta validation as <c>apimachinery/pkg/api/validation</c> does it (names, labels, annotations, owner references).</summary>
internal static partial class Validation
{
    private const string Dns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    private const string Dns1123SubdomainFmt = Dns1123LabelFmt + "(\\." + Dns1123LabelFmt + ")*";
    private const string QualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

    public static string? Dns1123SubdomainError(string value)
    {
        if (value.Length > 253)
        {
            return "must be no more than 253 characters";
        }

        return Dns1123Subdomain().IsMatch(value)
            ? null
            : $"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{Dns1123SubdomainFmt}')";
    }

    public static string? Dns1123LabelError(string value)
    {
        if (value.Length > 63)
        {
            return "must be no more than 63 characters";
        }

        return Dns1123Label().IsMatch(value)
            ? null
            : $"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{Dns1123LabelFmt}')";
    }

    /// <summary>Path-segment names (events): anything but "." / ".." and without '/' or '%'.</summary>
    public static string? PathSegmentError(string value) =>
        value is "." or ".." ? $"may not be '{value}'" : value.Contains('/') || value.Contains('%') ? "may not contain '/' or '%'" : null;

    public static string? QualifiedNameError(string value)
    {
        var name = value;
        var slash = value.IndexOf('/');
        if (slash >= 0)
        {
            var prefix = value[..slash];
            name = value[(slash + 1)..];
            if (prefix.Length == 0)
            {
                return "prefix part must be non-empty";
            }

            if (Dns1123SubdomainError(prefix) is { } prefixError)
            {
                return "prefix part " + prefixError;
            }
        }

        if (name.Length == 0)
        {
            return "name part must be non-empty";
        }

        if (name.Length > 63)
        {
            return "name part must be no more than 63 characters";
        }

        return QualifiedName().IsMatch(name)
            ? null
            : $"name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QualifiedNameFmt}')";
    }

    public static string? LabelValueError(string value)
    {
        if (value.Length > 63)
        {
            return "must be no more than 63 characters";
        }

        return value.Length == 0 || QualifiedName().IsMatch(value)
            ? null
            : $"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '({QualifiedNameFmt})?')";
    }

    /// <summary>Validates metadata (name per <paramref name="nameRule"/>, labels, annotations, ownerReferences, finalizers).</summary>
    public static void ValidateObjectMeta(JsonObject obj, Func<string, string?> nameRule, List<FieldError> errors)
    {
        var meta = obj["metadata"] as JsonObject;
        var name = meta.Str("name") ?? "";
        if (name.Length == 0)
        {
            errors.Add(FieldError.Required("metadata.name", "name or generateName is required"));
        }
        else if (nameRule(name) is { } nameError)
        {
            errors.Add(FieldError.Invalid("metadata.name", JsonValue.Create(name), nameError));
        }

        if (meta?["labels"] is JsonObject labels)
        {
            foreach (var (k, v) in labels)
            {
                if (QualifiedNameError(k) is { } keyError)
                {
                    errors.Add(FieldError.Invalid("metadata.labels", JsonValue.Create(k), keyError));
                }

                var value = v.AsString();
                if (value is null)
                {
                    errors.Add(FieldError.Invalid($"metadata.labels.{k}", v?.DeepClone(), "label values must be strings"));
                }
                else if (LabelValueError(value) is { } valueError)
                {
                    errors.Add(FieldError.Invalid("metadata.labels", JsonValue.Create(value), valueError));
                }
            }
        }
        else if (meta?["labels"] is { } badLabels)
        {
            errors.Add(FieldError.Invalid("metadata.labels", badLabels.DeepClone(), "must be a map of strings"));
        }

        if (meta?["annotations"] is JsonObject annotations)
        {
            long total = 0;
            foreach (var (k, v) in annotations)
            {
                if (QualifiedNameError(k.ToLowerInvariant()) is { } keyError)
                {
                    errors.Add(FieldError.Invalid("metadata.annotations", JsonValue.Create(k), keyError));
                }

                if (v.AsString() is not { } s)
                {
                    errors.Add(FieldError.Invalid($"metadata.annotations.{k}", v?.DeepClone(), "annotation values must be strings"));
                }
                else
                {
                    total += k.Length + s.Length;
                }
            }

            if (total > 256 * 1024)
            {
                errors.Add(FieldError.TooLong("metadata.annotations", 256 * 1024));
            }
        }

        if (meta?["ownerReferences"] is JsonArray owners)
        {
            var controllers = 0;
            for (var i = 0; i < owners.Count; i++)
            {
                var path = $"metadata.ownerReferences[{i}]";
                var owner = owners[i] as JsonObject;
                foreach (var field in new[] { "apiVersion", "kind", "name", "uid" })
                {
                    if (string.IsNullOrEmpty(owner.Str(field)))
                    {
                        errors.Add(FieldError.Invalid($"{path}.{field}", JsonValue.Create(""), $"{field} must not be empty"));
                    }
                }

                if (owner?["controller"].AsBool() == true)
                {
                    controllers++;
                }
            }

            if (controllers > 1)
            {
                errors.Add(FieldError.Invalid("metadata.ownerReferences", owners.DeepClone(), "Only one reference can have Controller set to true"));
            }
        }

        if (meta?["finalizers"] is JsonArray finalizers)
        {
            for (var i = 0; i < finalizers.Count; i++)
            {
                var f = finalizers[i].AsString() ?? "";
                if (QualifiedNameError(f) is { } finalizerError)
                {
                    errors.Add(FieldError.Invalid($"metadata.finalizers[{i}]", JsonValue.Create(f), finalizerError));
                }
            }
        }
    }

    [GeneratedRegex("^" + Dns1123SubdomainFmt + "$")]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex("^" + Dns1123LabelFmt + "$")]
    private static partial Regex Dns1123Label();

    [GeneratedRegex("^" + QualifiedNameFmt + "$")]
    private static partial Regex QualifiedName();
}

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>
/// Server-side printing: <c>meta.k8s.io/v1</c> Table (columnDefinitions + rows) as the apiserver's table convertors
/// build them. Custom resources: Name + additionalPrinterColumns (simple JSONPath; date cells are rendered as ages,
/// as the apiextensions convertor does); built-ins use the columns of the kube printers.
/// </summary>
internal static class Tables
{
    private const string NameDescription = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    private const string AgeDescription = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

    public static JsonArray ColumnDefinitions(ResourceType type)
    {
        var columns = new List<(string Name, string Type, string Format, string Description, int Priority)>
        {
            ("Name", "string", "name", NameDescription, 0),
        };
        switch (type.Strategy)
        {
            case Strategy.Custom:
                columns.AddRange(type.Columns.Select(c => (c.Name, c.Type, c.Format, c.Description, c.Priority)));
                break;
            case Strategy.Secret:
                columns.Add(("Type", "string", "", "The type of the secret", 0));
                columns.Add(("Data", "string", "", "The number of entries in the secret's data", 0));
                columns.Add(("Age", "string", "", AgeDescription, 0));
                break;
            case Strategy.Lease:
                columns.Add(("Holder", "string", "", "The holder of the lease", 0));
                columns.Add(("Age", "string", "", AgeDescription, 0));
                break;
            case Strategy.Namespace:
                columns.Add(("Status", "string", "", "The status of the namespace", 0));
                columns.Add(("Age", "string", "", AgeDescription, 0));
                break;
            case Strategy.Crd:
                columns.Add(("Created At", "date", "", AgeDescription, 0));
                break;
            case Strategy.CoreEvent or Strategy.EventsV1Event:
                columns.Clear();
                columns.Add(("Last Seen", "string", "", "The last time the event was observed", 0));
                columns.Add(("Type", "string", "", "Type of this event (Normal, Warning)", 0));
                columns.Add(("Reason", "string", "", "Why the action was taken", 0));
                columns.Add(("Object", "string", "", "The object the event is about", 0));
                columns.Add(("Subobject", "string", "", "The subobject the event is about", 1));
                columns.Add(("Source", "string", "", "The component reporting this event", 1));
                columns.Add(("Message", "string", "", "A human-readable description of the status of this operation", 0));
                columns.Add(("First Seen", "string", "", "The first time the event was observed", 1));
                columns.Add(("Count", "string", "", "The number of times the event has occurred", 1));
                columns.Add(("Name", "string", "", NameDescription, 1));
                break;
        }

        return new JsonArray([.. columns.Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Name,
            ["type"] = c.Type,
            ["format"] = c.Format,
            ["description"] = c.Description,
            ["priority"] = c.Priority,
        })]);
    }

    /// <summary>Cells of one row; <paramref name="stored"/> is the object in storage form (core/v1 for events).</summary>
    public static JsonArray Cells(ResourceType type, JsonObject stored, DateTimeOffset now)
    {
        var age = Age(stored["metadata"].Str("creationTimestamp"), now);
        var name = stored.Name();
        List<JsonNode?> cells = type.Strategy switch
        {
            Strategy.Custom => [name, .. type.Columns.Select(c => CustomCell(c, stored, now))],
            Strategy.Secret => [name, stored["type"].AsString() ?? "", (stored["data"] as JsonObject)?.Count ?? 0, age],
            Strategy.Lease => [name, stored["spec"].Str("holderIdentity") ?? "", age],
            Strategy.Namespace => [name, stored["status"].Str("phase") ?? "", age],
            Strategy.Crd => [name, stored["metadata"].Str("creationTimestamp")],
            Strategy.CoreEvent or Strategy.EventsV1Event => EventCells(stored, now),
            _ => [name],
        };
        return new JsonArray([.. cells]);
    }

    private static List<JsonNode?> EventCells(JsonObject e, DateTimeOffset now)
    {
        var involved = e["involvedObject"] as JsonObject;
        var first = e["firstTimestamp"].AsString() ?? e["eventTime"].AsString();
        var last = e["lastTimestamp"].AsString() ?? e["series"]?["lastObservedTime"].AsString() ?? e["eventTime"].AsString();
        var component = e["source"].Str("component") is { Length: > 0 } c ? c : e["reportingComponent"].AsString() ?? "";
        var host = e["source"].Str("host") is { Length: > 0 } h ? h : e["reportingInstance"].AsString() ?? "";
        var count = e["series"]?["count"].AsLong() ?? e["count"].AsLong() ?? 1;
        return
        [
            Age(last, now),
            e["type"].AsString() ?? "",
            e["reason"].AsString() ?? "",
            $"{(involved.Str("kind") ?? "").ToLowerInvariant()}/{involved.Str("name")}",
            involved.Str("fieldPath") ?? "",
            host.Length == 0 ? component : $"{component}, {host}",
            (e["message"].AsString() ?? "").Trim(),
            Age(first, now),
            count.ToString(CultureInfo.InvariantCulture),
            e.Name(),
        ];
    }

    private static JsonNode? CustomCell(PrinterColumn column, JsonObject obj, DateTimeOffset now)
    {
        var value = obj.At(column.JsonPath);
        if (value is null)
        {
            return null;
        }

        return column.Type switch
        {
            "string" => Json.PrintForColumn(value),
            "integer" => value.AsLong() is { } l ? l : null,
            "number" => value.AsDouble() is { } d ? d : null,
            "boolean" => value.AsBool() is { } b ? b : null,
            "date" => value.GetValueKind() == JsonValueKind.String ? (Json.TryParseRfc3339(value.GetValue<string>(), out var t) ? HumanDuration(now - t) : "<invalid>") : null,
            _ => null,
        };
    }

    private static string Age(string? timestamp, DateTimeOffset now) =>
        Json.TryParseRfc3339(timestamp, out var t) ? HumanDuration(now - t) : "<unknown>";

    /// <summary>k8s.io/apimachinery/pkg/util/duration.HumanDuration.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        if (d < TimeSpan.FromSeconds(-1))
        {
            return "<invalid>";
        }

        if (d < TimeSpan.Zero)
        {
            return "0s";
        }

        var seconds = (long)d.TotalSeconds;
        if (seconds < 60 * 2)
        {
            return $"{seconds}s";
        }

        var minutes = (long)d.TotalMinutes;
        if (minutes < 10)
        {
            var s = seconds % 60;
            return s == 0 ? $"{minutes}m" : $"{minutes}m{s}s";
        }

        if (minutes < 60 * 3)
        {
            return $"{minutes}m";
        }

        var hours = (long)d.TotalHours;
        if (hours < 8)
        {
            var m = minutes % 60;
            return m == 0 ? $"{hours}h" : $"{hours}h{m}m";
        }

        if (hours < 48)
        {
            return $"{hours}h";
        }

        if (hours < 24 * 8)
        {
            var h = hours % 24;
            return h == 0 ? $"{hours / 24}d" : $"{hours / 24}d{h}h";
        }

        if (hours < 24 * 365 * 2)
        {
            return $"{hours / 24}d";
        }

        if (hours < 24 * 365 * 8)
        {
            var days = hours / 24 % 365;
            return days == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{days}d";
        }

        return $"{hours / 24 / 365}y";
    }

    /// <summary>PartialObjectMetadata of an (output-form) object.</summary>
    public static JsonObject PartialMetadata(JsonObject obj, string metaVersion = "v1") => new()
    {
        ["kind"] = "PartialObjectMetadata",
        ["apiVersion"] = $"meta.k8s.io/{metaVersion}",
        ["metadata"] = obj["metadata"]?.DeepClone(),
    };

    /// <summary>A Table of rows; <paramref name="rows"/> pairs the stored form (for cells) with the output form (for the embedded object).</summary>
    public static JsonObject Table(ResourceType type, IEnumerable<(JsonObject Stored, JsonObject Output)> rows, JsonObject listMeta, string includeObject, bool headers, string metaVersion, DateTimeOffset now)
    {
        var table = new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = $"meta.k8s.io/{metaVersion}",
            ["metadata"] = listMeta,
            ["columnDefinitions"] = headers ? ColumnDefinitions(type) : null,
        };
        var array = new JsonArray();
        foreach (var (stored, output) in rows)
        {
            var row = new JsonObject { ["cells"] = Cells(type, stored, now) };
            row["object"] = includeObject switch
            {
                "None" => null,
                "Object" => output,
                _ => PartialMetadata(output, metaVersion),
            };
            array.Add(row);
        }

        table["rows"] = array;
        return table;
    }
}

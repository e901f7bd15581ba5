using System.Text;
using System.Text.Json.Nodes;

namespace Dgon.KubeTestServer;

/// <summary>
/// Decoding of Kubernetes protobuf request bodies (<c>application/vnd.kubernetes.protobuf</c>: the <c>k8s\0</c> magic
/// and a runtime.Unknown envelope) for the built-in types kubectl's typed generators send that way (<c>kubectl create
/// namespace</c>, <c>kubectl create secret</c>, …): Namespace, Secret, Event, Lease. Field numbers follow the
/// generated.proto files of k8s.io/api. Responses are always JSON (kubectl accepts that).
/// </summary>
internal static class Protobuf
{
    public const string ContentType = "application/vnd.kubernetes.protobuf";

    private enum F
    {
        Str,
        Bytes,
        Int,
        Bool,
        Time,
        MicroTime,
        Msg,
        StrList,
        MsgList,
        StrMap,
        BytesMap,
    }

    private static readonly Dictionary<string, Dictionary<int, (string Name, F Kind, string? Msg)>> Messages = new()
    {
        ["ObjectMeta"] = new()
        {
            [1] = ("name", F.Str, null), [2] = ("generateName", F.Str, null), [3] = ("namespace", F.Str, null), [5] = ("uid", F.Str, null),
            [6] = ("resourceVersion", F.Str, null), [7] = ("generation", F.Int, null), [8] = ("creationTimestamp", F.Time, null),
            [9] = ("deletionTimestamp", F.Time, null), [10] = ("deletionGracePeriodSeconds", F.Int, null), [11] = ("labels", F.StrMap, null),
            [12] = ("annotations", F.StrMap, null), [13] = ("ownerReferences", F.MsgList, "OwnerReference"), [14] = ("finalizers", F.StrList, null),
        },
        ["OwnerReference"] = new()
        {
            [1] = ("kind", F.Str, null), [3] = ("name", F.Str, null), [4] = ("uid", F.Str, null), [5] = ("apiVersion", F.Str, null),
            [6] = ("controller", F.Bool, null), [7] = ("blockOwnerDeletion", F.Bool, null),
        },
        ["ObjectReference"] = new()
        {
            [1] = ("kind", F.Str, null), [2] = ("namespace", F.Str, null), [3] = ("name", F.Str, null), [4] = ("uid", F.Str, null),
            [5] = ("apiVersion", F.Str, null), [6] = ("resourceVersion", F.Str, null), [7] = ("fieldPath", F.Str, null),
        },
        ["Namespace"] = new() { [1] = ("metadata", F.Msg, "ObjectMeta"), [2] = ("spec", F.Msg, "NamespaceSpec"), [3] = ("status", F.Msg, "NamespaceStatus") },
        ["NamespaceSpec"] = new() { [1] = ("finalizers", F.StrList, null) },
        ["NamespaceStatus"] = new() { [1] = ("phase", F.Str, null) },
        ["Secret"] = new()
        {
            [1] = ("metadata", F.Msg, "ObjectMeta"), [2] = ("data", F.BytesMap, null), [3] = ("type", F.Str, null),
            [4] = ("stringData", F.StrMap, null), [5] = ("immutable", F.Bool, null),
        },
        ["Lease"] = new() { [1] = ("metadata", F.Msg, "ObjectMeta"), [2] = ("spec", F.Msg, "LeaseSpec") },
        ["LeaseSpec"] = new()
        {
            [1] = ("holderIdentity", F.Str, null), [2] = ("leaseDurationSeconds", F.Int, null), [3] = ("acquireTime", F.MicroTime, null),
            [4] = ("renewTime", F.MicroTime, null), [5] = ("leaseTransitions", F.Int, null), [6] = ("strategy", F.Str, null), [7] = ("preferredHolder", F.Str, null),
        },
        ["Event"] = new()
        {
            [1] = ("metadata", F.Msg, "ObjectMeta"), [2] = ("involvedObject", F.Msg, "ObjectReference"), [3] = ("reason", F.Str, null),
            [4] = ("message", F.Str, null), [5] = ("source", F.Msg, "EventSource"), [6] = ("firstTimestamp", F.Time, null),
            [7] = ("lastTimestamp", F.Time, null), [8] = ("count", F.Int, null), [9] = ("type", F.Str, null), [10] = ("eventTime", F.MicroTime, null),
            [11] = ("series", F.Msg, "EventSeries"), [12] = ("action", F.Str, null), [13] = ("related", F.Msg, "ObjectReference"),
            [14] = ("reportingComponent", F.Str, null), [15] = ("reportingInstance", F.Str, null),
        },
        ["EventSource"] = new() { [1] = ("component", F.Str, null), [2] = ("host", F.Str, null) },
        ["EventSeries"] = new() { [1] = ("count", F.Int, null), [2] = ("lastObservedTime", F.MicroTime, null) },
    };

    /// <summary>Decodes a protobuf body into the JSON form of the object (apiVersion/kind from the envelope).</summary>
    public static JsonObject Decode(byte[] body, ResourceType type)
    {
        if (body.Length < 4 || body[0] != 'k' || body[1] != '8' || body[2] != 's' || body[3] != 0)
        {
            throw KubeException.BadRequest("provided object is not a Kubernetes protobuf message (missing the k8s magic prefix)");
        }

        try
        {
            string? apiVersion = null;
            string? kind = null;
            byte[]? raw = null;
            var reader = new Reader(body, 4, body.Length);
            while (reader.Next(out var field, out var wire))
            {
                switch (field)
                {
                    case 1:
                        var typeMeta = reader.Sub();
                        while (typeMeta.Next(out var f, out var w))
                        {
                            if (f == 1)
                            {
                                apiVersion = typeMeta.String();
                            }
                            else if (f == 2)
                            {
                                kind = typeMeta.String();
                            }
                            else
                            {
                                typeMeta.Skip(w);
                            }
                        }

                        break;
                    case 2:
                        raw = reader.Bytes();
                        break;
                    default:
                        reader.Skip(wire);
                        break;
                }
            }

            kind ??= type.Kind;
            if (!Messages.ContainsKey(kind) || kind is "ObjectMeta")
            {
                throw KubeException.UnsupportedMediaType(["application/json", "application/yaml"]);
            }

            var obj = Message(new Reader(raw ?? [], 0, raw?.Length ?? 0), kind);
            var result = new JsonObject { ["apiVersion"] = apiVersion ?? type.ApiVersion, ["kind"] = kind };
            foreach (var (k, v) in obj.ToList())
            {
                obj.Remove(k);
                result[k] = v;
            }

            return result;
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            throw KubeException.BadRequest("truncated protobuf message");
        }
    }

    private static JsonObject Message(Reader reader, string message)
    {
        var fields = Messages[message];
        var obj = new JsonObject();
        while (reader.Next(out var number, out var wire))
        {
            if (!fields.TryGetValue(number, out var field))
            {
                reader.Skip(wire);
                continue;
            }

            switch (field.Kind)
            {
                case F.Str:
                    // proto3 scalars at their zero value mean "unset" (omitempty in JSON).
                    if (reader.String() is { Length: > 0 } text)
                    {
                        obj[field.Name] = text;
                    }

                    break;
                case F.Bytes:
                    obj[field.Name] = Convert.ToBase64String(reader.Bytes());
                    break;
                case F.Int:
                    if ((long)reader.Varint() is var integer and not 0)
                    {
                        obj[field.Name] = integer;
                    }

                    break;
                case F.Bool:
                    if (reader.Varint() != 0)
                    {
                        obj[field.Name] = true;
                    }

                    break;
                case F.Time or F.MicroTime:
                    {
                        var sub = reader.Sub();
                        long seconds = 0;
                        long nanos = 0;
                        while (sub.Next(out var f, out var w))
                        {
                            if (f == 1)
                            {
                                seconds = (long)sub.Varint();
                            }
                            else if (f == 2)
                            {
                                nanos = (long)sub.Varint();
                            }
                            else
                            {
                                sub.Skip(w);
                            }
                        }

                        if (seconds != 0 || nanos != 0)
                        {
                            var t = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
                            obj[field.Name] = field.Kind == F.Time ? Json.Time(t) : Json.MicroTime(t);
                        }

                        break;
                    }

                case F.Msg:
                    obj[field.Name] = Message(reader.Sub(), field.Msg!);
                    break;
                case F.StrList:
                    ((obj[field.Name] ??= new JsonArray()) as JsonArray)!.Add(reader.String());
                    break;
                case F.MsgList:
                    ((obj[field.Name] ??= new JsonArray()) as JsonArray)!.Add(Message(reader.Sub(), field.Msg!));
                    break;
                case F.StrMap or F.BytesMap:
                    {
                        var entry = reader.Sub();
                        var key = "";
                        JsonNode? value = field.Kind == F.StrMap ? "" : "";
                        while (entry.Next(out var f, out var w))
                        {
                            if (f == 1)
                            {
                                key = entry.String();
                            }
                            else if (f == 2)
                            {
                                value = field.Kind == F.StrMap ? entry.String() : Convert.ToBase64String(entry.Bytes());
                            }
                            else
                            {
                                entry.Skip(w);
                            }
                        }

                        ((obj[field.Name] ??= new JsonObject()) as JsonObject)![key] = value;
                        break;
                    }
            }
        }

        return obj;
    }

    private sealed class Reader(byte[] data, int start, int end)
    {
        private int _pos = start;

        public bool Next(out int field, out int wire)
        {
            field = 0;
            wire = 0;
            if (_pos >= end)
            {
                return false;
            }

            var tag = Varint();
            field = (int)(tag >> 3);
            wire = (int)(tag & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }
        }

        public byte[] Bytes()
        {
            var length = (int)Varint();
            var bytes = data[_pos..(_pos + length)];
            _pos += length;
            return bytes;
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public Reader Sub()
        {
            var length = (int)Varint();
            var sub = new Reader(data, _pos, _pos + length);
            _pos += length;
            return sub;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0:
                    Varint();
                    break;
                case 1:
                    _pos += 8;
                    break;
                case 2:
                    var length = (int)Varint();
                    _pos += length;
                    break;
                case 5:
                    _pos += 4;
                    break;
                default:
                    throw KubeException.BadRequest($"unsupported protobuf wire type {wire}");
            }
        }
    }
}

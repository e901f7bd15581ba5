using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Dgon.KubeTestServer;

/// <summary>LIST (selectors, limit/continue over a consistent snapshot) and WATCH (history replay, synthetic ADDED, bookmarks, selectors, timeouts).</summary>
internal sealed partial class ApiServer
{
    private async Task ListAsync(HttpContext ctx, ResourceType type, string? ns)
    {
        var (mode, metaVersion) = Negotiate(ctx.Request);
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"]);
        var storageType = StorageType(type, Registry);
        CheckFieldSelector(storageType, fields);
        long limit = 0;
        if (q["limit"].ToString() is { Length: > 0 } limitText && (!long.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 0))
        {
            throw KubeException.BadRequest($"limit: Invalid value: \"{limitText}\"");
        }

        // resourceVersion=0 ("any version") is served from the watch cache in 1.32, which does not paginate: limit is ignored.
        if (q["resourceVersion"] == "0" && string.IsNullOrEmpty(q["continue"]))
        {
            limit = 0;
        }

        List<StoredObject> items;
        long rv;
        long? snapshotId = null;
        var startKey = "";
        if (q["continue"].ToString() is { Length: > 0 } token)
        {
            var (tokenRv, tokenStart, tokenSnapshot) = DecodeContinue(token);
            lock (Store.Lock)
            {
                var snapshot = Store.GetSnapshot(tokenSnapshot);
                if (snapshot is null || snapshot.Value.StorageKey != storageType.StorageKey || snapshot.Value.Rv != tokenRv)
                {
                    throw KubeException.Expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
                }

                items = snapshot.Value.Items;
                rv = snapshot.Value.Rv;
                snapshotId = tokenSnapshot;
            }

            startKey = tokenStart;
        }
        else
        {
            lock (Store.Lock)
            {
                items = [.. Store.List(storageType.StorageKey)];
                rv = Store.CurrentRv;
            }
        }

        var page = new List<JsonObject>();
        string? nextKey = null;
        long remaining = 0;
        foreach (var item in items)
        {
            if (string.CompareOrdinal(item.Key, startKey) < 0 || (ns is not null && !item.Key.StartsWith(ns + "/", StringComparison.Ordinal)))
            {
                continue;
            }

            var obj = item.Parse();
            if (!Matches(storageType, obj, ns, labels, fields))
            {
                continue;
            }

            if (limit > 0 && page.Count >= limit)
            {
                nextKey ??= item.Key;
                remaining++;
                continue;
            }

            page.Add(obj);
        }

        var meta = new JsonObject { ["resourceVersion"] = FormatRv(rv) };
        if (nextKey is not null)
        {
            if (snapshotId is null)
            {
                lock (Store.Lock)
                {
                    snapshotId = Store.Snapshot(storageType.StorageKey, items, rv);
                }
            }

            meta["continue"] = EncodeContinue(rv, nextKey, snapshotId.Value);
            if (labels.IsEmpty && fields.IsEmpty)
            {
                meta["remainingItemCount"] = remaining;
            }
        }

        JsonNode body;
        var stripTypeMeta = !type.IsCustom;
        switch (mode)
        {
            case OutputMode.Table:
                body = Tables.Table(type, page.Select(p => (p, ToOutput(type, (JsonObject)p.DeepClone()))), meta, IncludeObject(ctx.Request), true, metaVersion, Now);
                break;
            case OutputMode.PartialObjectMetadata:
                body = new JsonObject
                {
                    ["kind"] = "PartialObjectMetadataList",
                    ["apiVersion"] = $"meta.k8s.io/{metaVersion}",
                    ["metadata"] = meta,
                    ["items"] = new JsonArray([.. page.Select(p => (JsonNode)Tables.PartialMetadata(p, metaVersion))]),
                };
                break;
            default:
                var array = new JsonArray();
                foreach (var p in page)
                {
                    var output = ToOutput(type, p);
                    if (stripTypeMeta)
                    {
                        output.Remove("apiVersion");
                        output.Remove("kind");
                    }

                    array.Add(output);
                }

                body = new JsonObject
                {
                    ["kind"] = type.ListKind,
                    ["apiVersion"] = type.ApiVersion,
                    ["metadata"] = meta,
                    ["items"] = array,
                };
                break;
        }

        await WriteJsonAsync(ctx, 200, body, ContentTypeFor(mode, metaVersion, list: true));
    }

    private static string EncodeContinue(long rv, string start, long snapshot)
    {
        var json = new JsonObject { ["v"] = "meta.k8s.io/v1", ["rv"] = rv, ["start"] = start, ["snapshot"] = snapshot };
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(Json.Serialize(json))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private static (long Rv, string Start, long Snapshot) DecodeContinue(string token)
    {
        try
        {
            var b64 = token.Replace('-', '+').Replace('_', '/');
            b64 += new string('=', (4 - (b64.Length % 4)) % 4);
            var json = JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(b64)))!;
            return (json["rv"].AsLong() ?? 0, json["start"].AsString() ?? "", json["snapshot"].AsLong() ?? 0);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or NullReferenceException or InvalidOperationException)
        {
            throw KubeException.BadRequest($"continue key is not valid: {e.Message}");
        }
    }

    private async Task WatchAsync(HttpContext ctx, ResourceType type, string? ns, string? name, Action onStreamStarted)
    {
        var (mode, metaVersion) = Negotiate(ctx.Request);
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fieldText = q["fieldSelector"].ToString();
        if (name is not null)
        {
            fieldText = string.IsNullOrEmpty(fieldText) ? $"metadata.name={name}" : $"{fieldText},metadata.name={name}";
        }

        var fields = FieldSelector.Parse(fieldText);
        var storageType = StorageType(type, Registry);
        CheckFieldSelector(storageType, fields);
        var bookmarks = q["allowWatchBookmarks"] == "true";
        var sendInitialEvents = q["sendInitialEvents"] == "true";
        var rvText = q["resourceVersion"].ToString();
        var timeout = TimeSpan.FromSeconds(1800 * (1 + Random.Shared.NextDouble()));
        if (q["timeoutSeconds"].ToString() is { Length: > 0 } timeoutText)
        {
            if (!long.TryParse(timeoutText, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            {
                throw KubeException.BadRequest($"timeoutSeconds: Invalid value: \"{timeoutText}\"");
            }

            timeout = TimeSpan.FromSeconds(seconds);
        }

        long fromRv = 0;
        var fromNow = sendInitialEvents || rvText is "" or "0";
        if (!fromNow && !long.TryParse(rvText, NumberStyles.None, CultureInfo.InvariantCulture, out fromRv))
        {
            throw KubeException.BadRequest($"resourceVersion: Invalid value: \"{rvText}\": strconv.ParseUint: parsing {Json.Quote(rvText)}: invalid syntax");
        }

        var watcher = new Watcher(storageType.StorageKey);
        var backlog = new List<StoreEvent>();
        var expired = false;
        long startRv;
        long compacted;
        lock (Store.Lock)
        {
            if (fromNow)
            {
                foreach (var o in Store.List(storageType.StorageKey))
                {
                    backlog.Add(new StoreEvent("ADDED", storageType.StorageKey, o.Rv, o.Json, null));
                }

                Store.WatchNow(watcher);
            }
            else if (Store.WatchFrom(watcher, fromRv) is { } history)
            {
                backlog = history;
            }
            else
            {
                expired = true;
            }

            startRv = Store.CurrentRv;
            compacted = Store.CompactedRv;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        cts.CancelAfter(timeout);
        var headersSent = false;
        var lastRv = fromRv;
        try
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = ContentTypeFor(mode, metaVersion, list: false);
            ctx.Response.Headers.CacheControl = "no-cache, private";
            await ctx.Response.StartAsync(cts.Token);
            await ctx.Response.Body.FlushAsync(cts.Token);
            onStreamStarted();
            if (expired)
            {
                await WriteEventAsync(ctx, "ERROR", KubeException.Expired($"too old resource version: {rvText} ({compacted + 1})").ToStatus(), cts.Token);
                return;
            }

            foreach (var e in backlog)
            {
                headersSent = await DeliverAsync(ctx, type, storageType, e, ns, labels, fields, mode, metaVersion, headersSent, cts.Token);
                lastRv = Math.Max(lastRv, e.Rv);
            }

            if (sendInitialEvents && bookmarks)
            {
                await WriteEventAsync(ctx, "BOOKMARK", BookmarkObject(type, startRv, initialEventsEnd: true), cts.Token);
            }

            using var bookmarkTimer = bookmarks ? new Timer(_ => { lock (Store.Lock) { Store.Bookmark(watcher); } }, null, _options.BookmarkInterval, _options.BookmarkInterval) : null;
            await foreach (var e in watcher.Channel.Reader.ReadAllAsync(cts.Token))
            {
                switch (e.Type)
                {
                    case "BOOKMARK":
                        await WriteEventAsync(ctx, "BOOKMARK", BookmarkObject(type, e.Rv, e.InitialEventsEnd), cts.Token);
                        break;
                    case "ERROR":
                        await WriteEventAsync(ctx, "ERROR", KubeException.Expired($"too old resource version: {FormatRv(lastRv)} ({FormatRv(e.Rv)})").ToStatus(), cts.Token);
                        return;
                    default:
                        headersSent = await DeliverAsync(ctx, type, storageType, e, ns, labels, fields, mode, metaVersion, headersSent, cts.Token);
                        lastRv = e.Rv;
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // timeoutSeconds elapsed or the client went away: the stream ends cleanly.
        }
        catch (IOException)
        {
            // client went away
        }
        finally
        {
            lock (Store.Lock)
            {
                Store.Unwatch(watcher);
            }
        }
    }

    private static JsonObject BookmarkObject(ResourceType type, long rv, bool initialEventsEnd)
    {
        var meta = new JsonObject { ["resourceVersion"] = FormatRv(rv) };
        if (initialEventsEnd)
        {
            meta["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" };
        }

        return new JsonObject { ["kind"] = type.Kind, ["apiVersion"] = type.ApiVersion, ["metadata"] = meta };
    }

    /// <summary>Filters one change for a watcher (an object that stops matching is sent as DELETED, one that starts matching as ADDED) and writes it.</summary>
    private async Task<bool> DeliverAsync(HttpContext ctx, ResourceType type, ResourceType storageType, StoreEvent e, string? ns, LabelSelector labels, FieldSelector fields, OutputMode mode, string metaVersion, bool headersSent, CancellationToken ct)
    {
        var obj = (JsonObject)JsonNode.Parse(e.ObjectJson!)!;
        var matchesNew = Matches(storageType, obj, ns, labels, fields);
        string? eventType = null;
        var payload = obj;
        switch (e.Type)
        {
            case "ADDED":
                eventType = matchesNew ? "ADDED" : null;
                break;
            case "DELETED":
                eventType = matchesNew ? "DELETED" : null;
                break;
            case "MODIFIED":
                {
                    var old = e.OldJson is null ? null : (JsonObject)JsonNode.Parse(e.OldJson)!;
                    var matchesOld = old is not null && Matches(storageType, old, ns, labels, fields);
                    if (matchesNew)
                    {
                        eventType = matchesOld ? "MODIFIED" : "ADDED";
                    }
                    else if (matchesOld)
                    {
                        eventType = "DELETED";
                        payload = old!;
                        payload.Meta()["resourceVersion"] = FormatRv(e.Rv);
                    }

                    break;
                }
        }

        if (eventType is null)
        {
            return headersSent;
        }

        var output = ToOutput(type, (JsonObject)payload.DeepClone());
        JsonObject body = mode switch
        {
            OutputMode.Table => Tables.Table(type, [(payload, output)], new JsonObject { ["resourceVersion"] = FormatRv(e.Rv) }, IncludeObject(ctx.Request), !headersSent, metaVersion, Now),
            OutputMode.PartialObjectMetadata => Tables.PartialMetadata(output, metaVersion),
            _ => output,
        };
        await WriteEventAsync(ctx, eventType, body, ct);
        return true;
    }

    private static async Task WriteEventAsync(HttpContext ctx, string type, JsonObject obj, CancellationToken ct)
    {
        var line = Json.Serialize(new JsonObject { ["type"] = type, ["object"] = obj }) + "\n";
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line), ct);
        await ctx.Response.Body.FlushAsync(ct);
    }
}

using System.Globalization;

namespace Dgon.Dashboard;

/// <summary>
/// Where the Nodes page is in the id-ordered (keyset) list: the API's opaque cursor of this page, the cursors of the
/// pages before it (the trail, so that Previous works without an API that pages backwards) and the page number.
/// All three live in the URL (<c>?cursor=&amp;trail=c1.c2&amp;page=4</c>), so links, a reload and the browser's back
/// button show the same page. Cursors are base64url (RFC 4648 §5: no <c>.</c>), so the trail joins them with dots.
/// </summary>
/// <param name="Cursor">The API cursor of this page (<c>GET /v1/nodes?cursor=</c>), or null for the first page.</param>
/// <param name="Trail">Cursors of the previous pages, oldest first, without the first page (which has none); at most <see cref="MaxTrail"/>.</param>
/// <param name="Number">1-based page number, shown to the user.</param>
public sealed record NodePagePosition(string? Cursor, IReadOnlyList<string> Trail, int Number)
{
    /// <summary>
    /// Most cursors kept in the trail: 50 cursors of ≤ 84 characters (base64url of a 63-character id) keep the URL
    /// under 4.5 KB, well below Kestrel's 8 KB request line. Deeper than that, the oldest are dropped and
    /// Previous stops where the trail starts (First page still works).
    /// </summary>
    public const int MaxTrail = 50;

    /// <summary>The first page.</summary>
    public static NodePagePosition First { get; } = new(null, [], 1);

    /// <summary>Whether there is a page before this one that the trail can reach.</summary>
    public bool HasPrevious => Cursor is not null && (Number == 2 || Trail.Count > 0);

    /// <summary>
    /// Builds a position from raw query values. No cursor means the first page; empty trail entries are dropped and
    /// only the newest <see cref="MaxTrail"/> are kept; a missing or too small page number becomes the smallest one the
    /// trail allows. Cursors are not checked here: the API answers 400 to one it did not issue.
    /// </summary>
    public static NodePagePosition Create(string? cursor, string? trail, string? page)
    {
        if (string.IsNullOrWhiteSpace(cursor))
        {
            return First;
        }

        var cursors = (trail ?? "").Split('.', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (cursors.Length > MaxTrail)
        {
            cursors = cursors[^MaxTrail..];
        }

        var least = cursors.Length + 2;
        var number = int.TryParse(page, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= least ? n : least;
        return new NodePagePosition(cursor.Trim(), cursors, number);
    }

    /// <summary>The page after this one, which starts after <paramref name="nextCursor"/> (the API's next cursor).</summary>
    public NodePagePosition Next(string nextCursor)
    {
        ArgumentException.ThrowIfNullOrEmpty(nextCursor);
        var trail = Cursor is null ? Trail : [.. Trail, Cursor];
        return new NodePagePosition(nextCursor, trail.Count > MaxTrail ? [.. trail.Skip(trail.Count - MaxTrail)] : trail, Number + 1);
    }

    /// <summary>The page before this one.</summary>
    /// <exception cref="InvalidOperationException">There is none the trail can reach (<see cref="HasPrevious"/> is false).</exception>
    public NodePagePosition Previous()
    {
        if (!HasPrevious)
        {
            throw new InvalidOperationException("no previous page in the trail");
        }

        return Trail.Count == 0 ? First : new NodePagePosition(Trail[^1], [.. Trail.Take(Trail.Count - 1)], Number - 1);
    }

    /// <summary>Adds <c>cursor</c>, <c>trail</c> and <c>page</c> to <paramref name="query"/> (nothing for the first page).</summary>
    public void AddTo(IDictionary<string, string?> query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (Cursor is null)
        {
            return;
        }

        query["cursor"] = Cursor;
        if (Trail.Count > 0)
        {
            query["trail"] = string.Join('.', Trail);
        }

        query["page"] = Number.ToString(CultureInfo.InvariantCulture);
    }
}

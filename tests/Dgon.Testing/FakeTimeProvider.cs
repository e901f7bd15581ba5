namespace Dgon.Testing;

/// <summary>
/// A manually advanced clock (Microsoft.Extensions.TimeProvider.Testing cannot be restored here; this is the small
/// subset our tests need: <see cref="GetUtcNow"/> and <see cref="Advance"/>).
/// </summary>
public sealed class FakeTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => _now;

    /// <summary>Moves the clock forward.</summary>
    public void Advance(TimeSpan by) => _now += by;
}

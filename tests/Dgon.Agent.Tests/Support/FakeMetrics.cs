namespace Dgon.Agent.Tests.Support;

/// <summary>An <see cref="IHostMetrics"/> that returns a fixed sample.</summary>
public sealed class FakeMetrics(HostSample sample) : IHostMetrics
{
    public int Calls { get; private set; }

    public Task<HostSample> MeasureAsync(CancellationToken cancellationToken)
    {
        Calls++;
        return Task.FromResult(sample);
    }
}

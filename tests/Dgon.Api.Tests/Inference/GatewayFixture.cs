using System.ClientModel;
using System.ClientModel.Primitives;
using Dgon.Testing;
using OpenAI;
using OpenAI.Chat;
using static Dgon.Api.Tests.Accounts.AccountClient;

namespace Dgon.Api.Tests.Inference;

/// <summary>
/// One real API (in-process, real Kestrel, its own PostgreSQL database) for the gateway tests, with an operator
/// user's API keys: one with scope <c>inference</c>, one with only <c>nodes:read</c>. Each test uses its own model
/// names and nodes, so the tests do not see each other's nodes. The slot wait before 429 is 1 s.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    /// <summary>The API.</summary>
    public InProcessApiHost Host { get; private set; } = null!;

    /// <summary>The database URL.</summary>
    public string DatabaseUrl { get; private set; } = "";

    /// <summary>An API key with scope inference.</summary>
    public string InferenceKey { get; private set; } = "";

    /// <summary>Its public id.</summary>
    public string InferenceKeyId { get; private set; } = "";

    /// <summary>An API key without scope inference.</summary>
    public string ReadOnlyKey { get; private set; } = "";

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var postgres = await SharedPostgres.GetAsync();
        DatabaseUrl = await postgres.CreateDatabaseAsync();
        Host = await InProcessApiHost.StartAsync(new ApiHostOptions
        {
            DatabaseUrl = DatabaseUrl,
            Environment = new Dictionary<string, string?> { ["DGON_GATEWAY_QUEUE_SECONDS"] = "1" },
        });
        var email = NewEmail("inference");
        await CreateUserAsync(Host.Client, email, "operator");
        var session = await LoginAsync(Host.Client, email);
        (InferenceKeyId, InferenceKey) = await CreateKeyAsync(Host.Client, session, "inference");
        (_, ReadOnlyKey) = await CreateKeyAsync(Host.Client, session, "nodes:read");
    }

    /// <inheritdoc />
    public async Task DisposeAsync() => await Host.DisposeAsync();

    /// <summary>The official OpenAI SDK's options pointed at <paramref name="api"/> (no retries, so a 429 is seen).</summary>
    public static OpenAIClientOptions SdkOptions(Uri api, string? region = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        var options = new OpenAIClientOptions { Endpoint = new Uri(api, "/v1"), RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = TimeSpan.FromSeconds(60) };
        if (region is not null)
        {
            options.AddPolicy(new HeaderPolicy("X-DGON-Region", region), PipelinePosition.PerCall);
        }

        return options;
    }

    /// <summary>A chat client of the SDK for <paramref name="model"/>.</summary>
    public ChatClient Chat(string model, string? key = null, string? region = null, Uri? api = null) =>
        new(model, new ApiKeyCredential(key ?? InferenceKey), SdkOptions(api ?? Host.BaseAddress, region));

    /// <summary>Adds a header to every request of the SDK.</summary>
    private sealed class HeaderPolicy(string name, string value) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}

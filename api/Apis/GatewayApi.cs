using Dgon.Api.Inference;

namespace Dgon.Api.Apis;

/// <summary>
/// The OpenAI-compatible gateway endpoints (issue 13): <c>GET /v1/models</c> and <c>POST /v1/chat/completions</c>
/// (plain and <c>stream: true</c>), answered by <see cref="Gateway"/>. Errors use OpenAI's shape
/// (<see cref="OpenAiErrors"/>), not problem+json, so the OpenAI SDKs read them.
/// </summary>
public static class GatewayApi
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapGatewayApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("Inference");
        group.MapGet("/models", (HttpContext context, Gateway gateway) => gateway.ModelsAsync(context))
            .WithName("ListModels")
            .WithSummary("OpenAI-compatible model list: every model an active, linked node serves (Bearer credential with scope inference)");
        group.MapPost("/chat/completions", (HttpContext context, Gateway gateway) => gateway.ChatCompletionsAsync(context))
            .WithName("CreateChatCompletion")
            .WithSummary("OpenAI-compatible chat completion routed to a node (stream: true → server-sent events ending in data: [DONE]); scope inference")
            .Accepts<object>("application/json");
        return app;
    }
}

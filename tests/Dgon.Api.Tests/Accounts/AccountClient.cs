using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dgon.Testing;

namespace Dgon.Api.Tests.Accounts;

/// <summary>Account calls of the tests over real HTTP: users made with the admin token, logins, keys.</summary>
public static class AccountClient
{
    /// <summary>The password every test user gets (long enough for the 12-character rule).</summary>
    public const string Password = "correct horse battery staple";

    /// <summary>A JSON request, with a bearer credential when given.</summary>
    public static HttpRequestMessage Request(HttpMethod method, string path, string? bearer = null, string? json = null, string? forwardedFor = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }

        return request;
    }

    /// <summary>Sends and returns status and body.</summary>
    public static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient api, HttpMethod method, string path, string? bearer = null, string? json = null, string? forwardedFor = null)
    {
        using var request = Request(method, path, bearer, json, forwardedFor);
        using var response = await api.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Creates a user through <c>POST /v1/admin/users</c> with the admin token; returns its id.</summary>
    public static async Task<string> CreateUserAsync(HttpClient api, string email, string role, string password = Password)
    {
        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/admin/users", ApiHost.AdminToken, JsonSerializer.Serialize(new { email, password, role }));
        Assert.True(status == HttpStatusCode.Created, $"create user {email} → {(int)status}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>Logs in; returns the session token.</summary>
    public static async Task<string> LoginAsync(HttpClient api, string email, string password = Password)
    {
        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/auth/sessions", json: JsonSerializer.Serialize(new { email, password }));
        Assert.True(status == HttpStatusCode.Created, $"login {email} → {(int)status}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>Creates an API key of the bearer's own; returns (id, key).</summary>
    public static async Task<(string Id, string Key)> CreateKeyAsync(HttpClient api, string bearer, params string[] scopes)
    {
        var (status, body) = await SendAsync(api, HttpMethod.Post, "/v1/me/api-keys", bearer, JsonSerializer.Serialize(new { name = "test key", scopes }));
        Assert.True(status == HttpStatusCode.Created, $"create key → {(int)status}: {body}");
        var root = JsonDocument.Parse(body).RootElement;
        return (root.GetProperty("id").GetString()!, root.GetProperty("key").GetString()!);
    }

    /// <summary>A fresh e-mail address.</summary>
    public static string NewEmail(string who) => $"{who}-{Guid.NewGuid():N}@example.test";
}

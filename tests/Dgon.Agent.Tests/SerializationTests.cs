using System.Text;
using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Domain.Nodes;

namespace Dgon.Agent.Tests;

public sealed class SerializationTests
{
    [Fact]
    public void Heartbeat_omits_unmeasured_fields()
    {
        var bytes = NodeApiClient.SerializeBody(new HeartbeatRequest { Ready = true, MemUsedGb = 6.651 }, NodeApiClient.Contract.HeartbeatRequest);
        Assert.Equal("""{"mem_used_gb":6.651,"ready":true}""", Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void Register_body_uses_the_contract_names_and_omits_absent_optionals()
    {
        var bytes = NodeApiClient.SerializeBody(
            new RegisterRequest { NodeId = "n1", Region = "local", Runtime = "ollama", GreenEnergy = true },
            NodeApiClient.Contract.RegisterRequest);
        Assert.Equal("""{"node_id":"n1","region":"local","runtime":"ollama","green_energy":true}""", Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void Register_body_carries_the_public_key()
    {
        var bytes = NodeApiClient.SerializeBody(
            new RegisterRequest { NodeId = "n1", Region = "local", Runtime = "ollama", PublicKey = "ed25519:" + new string('A', 43) + "=" },
            NodeApiClient.Contract.RegisterRequest);
        Assert.Equal("""{"node_id":"n1","region":"local","runtime":"ollama","public_key":"ed25519:""" + new string('A', 43) + "=\"}", Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void Sample_receipt_has_id_fields_and_real_timestamps()
    {
        var start = DateTimeOffset.FromUnixTimeSeconds(1_736_538_502);
        var end = DateTimeOffset.FromUnixTimeSeconds(1_736_538_518);
        var id = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        var receipt = SampleReceipt.Create("n1", "ap-southeast", NodeRuntime.Ollama, new OllamaModel("llama3.1:8b", new string('a', 64)), start, end, id);

        var json = JsonDocument.Parse(NodeApiClient.SerializeBody(receipt, NodeApiClient.Contract.ReceiptRequest)).RootElement;
        Assert.Equal("r_0f8fad5bd9cb469fa16570867728950e", json.GetProperty("id").GetString());
        Assert.Equal("n1", json.GetProperty("node_id").GetString());
        Assert.Equal("ap-southeast", json.GetProperty("region").GetString());
        Assert.Equal("llama3.1:8b", json.GetProperty("model_id").GetString());
        var payload = json.GetProperty("payload");
        Assert.Equal("1.0", payload.GetProperty("version").GetString());
        Assert.Equal(1_736_538_502, payload.GetProperty("ts_start").GetInt64());
        Assert.Equal(1_736_538_518, payload.GetProperty("ts_end").GetInt64());
        Assert.True(payload.GetProperty("sample").GetBoolean());
        Assert.Equal("ollama", payload.GetProperty("runtime").GetString());
        Assert.Equal("sha256:" + new string('a', 64), payload.GetProperty("model_hash").GetString());
        Assert.False(payload.TryGetProperty("tokens_input", out _));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("sha256:abc", "sha256:abc")]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")]
    [InlineData("short", "short")]
    public void Model_hash_is_normalised_to_sha256_prefix(string? digest, string? expected) =>
        Assert.Equal(expected, SampleReceipt.ModelHash(digest));
}

using System.Text.Json;
using Dgon.Domain.Contracts;
using Dgon.Domain.Validation;

namespace Dgon.Domain.Tests;

public sealed class ContractValidatorTests
{
    [Theory]
    [InlineData("macbook-001", true)]
    [InlineData("a", true)]
    [InlineData("0node", true)]
    [InlineData("MacBook", false)]
    [InlineData("-node", false)]
    [InlineData("node-", false)]
    [InlineData("node_1", false)]
    [InlineData("node.1", false)]
    [InlineData("node-1\n", false)]
    [InlineData("", false)]
    public void Node_ids_are_lowercase_rfc1123_labels(string id, bool valid) => Assert.Equal(valid, ContractValidator.IsValidNodeId(id));

    [Fact]
    public void Node_ids_are_at_most_63_characters()
    {
        Assert.True(ContractValidator.IsValidNodeId(new string('a', 63)));
        Assert.False(ContractValidator.IsValidNodeId(new string('a', 64)));
    }

    [Fact]
    public void Register_accepts_the_seed_agents_body_with_empty_wallet()
    {
        var body = new RegisterRequest { NodeId = "macbook-001", Region = "ap-southeast", Runtime = "ollama", AsnHint = "residential", WalletAddress = "", GreenEnergy = false };
        Assert.Empty(ContractValidator.Validate(body));
    }

    [Fact]
    public void Register_names_every_bad_field()
    {
        var errors = ContractValidator.Validate(new RegisterRequest { NodeId = "Bad", Region = null, Runtime = "llama.cpp", AsnHint = new string('x', 200) });
        Assert.Equal(["asn_hint", "node_id", "region", "runtime"], errors.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("ollama, vllm, tensorrtllm, tgi", errors["runtime"][0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, null, null, null, "ready")]
    [InlineData(true, 1.5, null, null, "gpu_util")]
    [InlineData(true, null, -1.0, null, "mem_used_gb")]
    [InlineData(true, null, null, double.NaN, "p95_ms")]
    public void Heartbeat_field_rules(bool? ready, double? gpu, double? mem, double? p95, string badField)
    {
        var errors = ContractValidator.Validate(new HeartbeatRequest { Ready = ready, GpuUtil = gpu, MemUsedGb = mem, P95Ms = p95 });
        Assert.Equal([badField], errors.Keys);
    }

    [Fact]
    public void Heartbeat_with_only_ready_is_valid() => Assert.Empty(ContractValidator.Validate(new HeartbeatRequest { Ready = false }));

    [Fact]
    public void Receipt_payload_must_be_an_object()
    {
        using var array = JsonDocument.Parse("[1]");
        var errors = ContractValidator.Validate(new ReceiptRequest { Id = "r_1", NodeId = "n", Region = "eu", ModelId = "m", Payload = array.RootElement });
        Assert.Equal(["payload"], errors.Keys);
    }

    [Fact]
    public void Receipt_ids_are_bounded_and_plain()
    {
        using var obj = JsonDocument.Parse("{}");
        Assert.Empty(ContractValidator.Validate(new ReceiptRequest { Id = "r_01J:abc-1.2", NodeId = "n", Region = "eu", ModelId = "llama3.1-8b", Payload = obj.RootElement }));
        Assert.Contains("id", ContractValidator.Validate(new ReceiptRequest { Id = "r 1", NodeId = "n", Region = "eu", ModelId = "m", Payload = obj.RootElement }).Keys);
        Assert.Contains("id", ContractValidator.Validate(new ReceiptRequest { Id = new string('r', 129), NodeId = "n", Region = "eu", ModelId = "m", Payload = obj.RootElement }).Keys);
    }
}

using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Dgon.Domain.Auth;

namespace Dgon.Bench;

/// <summary>
/// HMAC-SHA256 signing and constant-time verification of node requests (seed 000), on the two body sizes the API
/// sees most: a ~100-byte heartbeat and a 16 KiB receipt.
/// </summary>
[MemoryDiagnoser]
public class NodeAuthBenchmarks
{
    private readonly string _token = NodeAuth.NewToken();
    private readonly string _timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
    private byte[] _body = [];
    private string _signature = string.Empty;

    /// <summary>Which request body is signed.</summary>
    [Params("heartbeat-100B", "receipt-16KiB")]
    public string Body { get; set; } = "heartbeat-100B";

    [GlobalSetup]
    public void Setup()
    {
        _body = Body == "heartbeat-100B" ? HeartbeatBody() : ReceiptBody(16 * 1024);
        _signature = NodeAuth.Sign(_token, _body, _timestamp);
    }

    [Benchmark]
    public string Sign() => NodeAuth.Sign(_token, _body, _timestamp);

    [Benchmark]
    public NodeAuthResult VerifySignature() => NodeAuth.VerifySignature(_token, _body, _timestamp, _signature);

    /// <summary>A heartbeat as the agent sends it, full double precision: 100 bytes of JSON.</summary>
    internal static byte[] HeartbeatBody() =>
        Encoding.UTF8.GetBytes("""{"gpu_util":0.43750000000000006,"mem_used_gb":11.254886400000001,"p95_ms":183.51234567,"ready":true}""");

    /// <summary>A receipt whose JSON is exactly <paramref name="size"/> bytes (padding in the payload).</summary>
    internal static byte[] ReceiptBody(int size)
    {
        const string head = "{\"id\":\"req-0001\",\"node_id\":\"bench-node-1\",\"region\":\"local\",\"model_id\":\"llama3.1-8b\",\"payload\":{\"tokens_in\":512,\"tokens_out\":256,\"pad\":\"";
        const string tail = "\"}}";
        var pad = size - Encoding.UTF8.GetByteCount(head) - Encoding.UTF8.GetByteCount(tail);
        return Encoding.UTF8.GetBytes(head + new string('x', pad) + tail);
    }
}

using System.Globalization;
using System.Runtime.InteropServices;
using Dgon.KubeTestServer;

// Standalone host for manual use with kubectl:
//   dotnet run --project tests/Dgon.KubeTestServer -- --port 8443 --kubeconfig /tmp/k.yaml [--crds file.yaml ...] [--namespace ns]
var port = 0;
string? kubeconfig = null;
string? ns = null;
var crds = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--port" when i + 1 < args.Length:
            port = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--kubeconfig" when i + 1 < args.Length:
            kubeconfig = args[++i];
            break;
        case "--namespace" when i + 1 < args.Length:
            ns = args[++i];
            break;
        case "--crds" when i + 1 < args.Length:
            crds.Add(args[++i]);
            break;
        default:
            await Console.Error.WriteLineAsync($"unknown argument {args[i]}; usage: --port N --kubeconfig PATH [--crds FILE]... [--namespace NS]");
            return 2;
    }
}

var options = new KubeApiTestServerOptions { CrdFiles = crds.Count > 0 ? crds : null };
await using var server = await KubeApiTestServer.StartAsync(options, port, CancellationToken.None);
Console.WriteLine($"Kubernetes API test server listening on {server.BaseAddress}");
if (kubeconfig is not null)
{
    server.WriteKubeconfig(kubeconfig, ns);
    Console.WriteLine($"kubeconfig written to {kubeconfig} (kubectl --kubeconfig {kubeconfig} get dgonnodes)");
}

using var stop = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
{
    signal.Cancel = true;
    stop.Cancel();
});
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal =>
{
    signal.Cancel = true;
    stop.Cancel();
});
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
    Console.WriteLine("stopping");
}

return 0;

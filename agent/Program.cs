using System.Runtime.InteropServices;
using Dgon.Agent;

// Ctrl-C and SIGTERM cancel the run; the agent then exits 0 (not the runtime's default termination).
using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

return await AgentCommandLine.RunAsync(args, AgentEnvironment.System, AgentHost.RunAsync, Console.Out, Console.Error, stop.Token);

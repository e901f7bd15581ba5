using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Dgon.Kubernetes.Tests;

/// <summary>A temp directory deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dgon-k8s-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string relative, string content)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Captures requests and answers each with a canned response.</summary>
public sealed class RecordingHandler(Func<HttpRequestMessage, HttpResponseMessage>? respond = null) : HttpMessageHandler
{
    public List<(HttpMethod Method, Uri Uri, string? Authorization, string? ContentType, string? Body)> Requests { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        lock (Requests)
        {
            Requests.Add((request.Method, request.RequestUri!, request.Headers.Authorization?.ToString(), request.Content?.Headers.ContentType?.ToString(), body));
        }

        return respond?.Invoke(request) ?? Json(HttpStatusCode.OK, """{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"default","resourceVersion":"1"}}""");
    }

    public static HttpResponseMessage Json(HttpStatusCode code, string json) =>
        new(code) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
}

/// <summary>Self-made CA and client certificates in PEM (RSA and EC keys in the formats kubeadm writes).</summary>
public static class TestCerts
{
    public static (string CaPem, X509Certificate2 Ca, RSA CaKey) CreateCa()
    {
        var key = RSA.Create(2048);
        var req = new CertificateRequest("CN=test-ca", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return (ca.ExportCertificatePem(), ca, key);
    }

    /// <summary>A client certificate; <paramref name="ec"/> picks an EC P-256 key (SEC1 "EC PRIVATE KEY" PEM), else RSA (PKCS#1 "RSA PRIVATE KEY").</summary>
    public static (string CertPem, string KeyPem) CreateClient(bool ec, string cn = "tester")
    {
        var (_, ca, caKey) = CreateCa();
        using (caKey)
        {
            if (ec)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var req = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
                var generator = X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1);
                using var cert = req.Create(ca.SubjectName, generator, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(12), RandomNumberGenerator.GetBytes(8));
                return (cert.ExportCertificatePem(), key.ExportECPrivateKeyPem());
            }
            else
            {
                using var key = RSA.Create(2048);
                var req = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                using var cert = req.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(12), RandomNumberGenerator.GetBytes(8));
                return (cert.ExportCertificatePem(), key.ExportRSAPrivateKeyPem());
            }
        }
    }

    public static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
}

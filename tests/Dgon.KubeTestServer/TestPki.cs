using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Dgon.KubeTestServer;

/// <summary>Throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a client certificate (CN=dgon-test, O=dgon — the user/group a real apiserver would derive).</summary>
public static class TestPki
{
    /// <summary>Creates a fresh CA, server and client certificate (ECDSA P-256, valid one day).</summary>
    public static TestPkiSet Create()
    {
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=dgon-test-ca", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        var ca = caReq.CreateSelfSigned(now, now.AddDays(1));

        var server = Issue(ca, caKey, "CN=127.0.0.1", now, serverAuth: true);
        var client = Issue(ca, caKey, "CN=dgon-test, O=dgon", now, serverAuth: false);
        var clientKey = client.GetECDsaPrivateKey()!;
        return new TestPkiSet(
            X509CertificateLoader.LoadCertificate(ca.RawData),
            server,
            client,
            ca.ExportCertificatePem(),
            client.ExportCertificatePem(),
            clientKey.ExportPkcs8PrivateKeyPem());
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, ECDsa caKey, string subject, DateTimeOffset now, bool serverAuth)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (serverAuth)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            req.CertificateExtensions.Add(san.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var generator = X509SignatureGenerator.CreateForECDsa(caKey);
        using var issued = req.Create(ca.SubjectName, generator, now, now.AddDays(1), serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}

/// <summary>The certificates of <see cref="TestPki.Create"/> and their PEM forms.</summary>
/// <param name="Ca">The CA certificate (public part).</param>
/// <param name="Server">Server certificate with private key (SAN IP 127.0.0.1, DNS localhost).</param>
/// <param name="Client">Client certificate with private key (CN=dgon-test, O=dgon).</param>
/// <param name="CaPem">CA certificate, PEM.</param>
/// <param name="ClientCertPem">Client certificate, PEM.</param>
/// <param name="ClientKeyPem">Client private key, PKCS#8 PEM.</param>
public sealed record TestPkiSet(X509Certificate2 Ca, X509Certificate2 Server, X509Certificate2 Client, string CaPem, string ClientCertPem, string ClientKeyPem)
{
    /// <summary>Writes <c>ca.crt</c>, <c>client.crt</c>, <c>client.key</c>, <c>server.crt</c> and <c>server.key</c> into <paramref name="directory"/>.</summary>
    public void WritePemFiles(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "ca.crt"), CaPem);
        File.WriteAllText(Path.Combine(directory, "client.crt"), ClientCertPem);
        File.WriteAllText(Path.Combine(directory, "client.key"), ClientKeyPem);
        File.WriteAllText(Path.Combine(directory, "server.crt"), Server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.key"), Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }
}

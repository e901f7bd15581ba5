using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dgon.Persistence;

/// <summary>EF Core context over the schema created by <see cref="SqlMigrator"/> (it never creates schema itself).</summary>
public sealed class DgonDbContext(DbContextOptions<DgonDbContext> options) : DbContext(options)
{
    /// <summary>The <c>nodes</c> table.</summary>
    public DbSet<NodeEntity> Nodes => Set<NodeEntity>();

    /// <summary>The <c>node_secrets</c> table.</summary>
    public DbSet<NodeSecretEntity> NodeSecrets => Set<NodeSecretEntity>();

    /// <summary>The <c>receipts</c> table.</summary>
    public DbSet<ReceiptEntity> Receipts => Set<ReceiptEntity>();

    /// <summary>The <c>join_tokens</c> table.</summary>
    public DbSet<JoinTokenEntity> JoinTokens => Set<JoinTokenEntity>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        modelBuilder.ApplyConfiguration(new NodeEntityConfiguration());
        modelBuilder.ApplyConfiguration(new NodeSecretEntityConfiguration());
        modelBuilder.ApplyConfiguration(new ReceiptEntityConfiguration());
        modelBuilder.ApplyConfiguration(new JoinTokenEntityConfiguration());
    }
}

/// <summary>A row of <c>nodes</c>. Times are UTC.</summary>
public sealed class NodeEntity
{
    /// <summary>Primary key: node id.</summary>
    public required string Id { get; set; }

    /// <summary>Region.</summary>
    public required string Region { get; set; }

    /// <summary>Runtime wire name.</summary>
    public required string Runtime { get; set; }

    /// <summary>Phase wire name.</summary>
    public required string Status { get; set; }

    /// <summary>Reputation 0–100.</summary>
    public double Reputation { get; set; }

    /// <summary>Green energy flag.</summary>
    public bool GreenEnergy { get; set; }

    /// <summary>Network hint.</summary>
    public string? AsnHint { get; set; }

    /// <summary>Wallet address.</summary>
    public string? WalletAddress { get; set; }

    /// <summary>Enrolled Ed25519 public key (<c>ed25519:</c> + base64), or null.</summary>
    public string? PublicKey { get; set; }

    /// <summary>Id of the join token that enrolled the node, or null.</summary>
    public string? EnrolledWith { get; set; }

    /// <summary>Owner (issue 12), copied from the enrolling join token, or null.</summary>
    public string? OwnerId { get; set; }

    /// <summary>Ready flag of the last heartbeat.</summary>
    public bool Ready { get; set; }

    /// <summary>Reported GPU utilisation ratio.</summary>
    public double? GpuUtil { get; set; }

    /// <summary>Reported memory in use (GB).</summary>
    public double? MemUsedGb { get; set; }

    /// <summary>Reported p95 latency (ms).</summary>
    public double? P95Ms { get; set; }

    /// <summary>Last valid heartbeat.</summary>
    public DateTime? LastHeartbeat { get; set; }

    /// <summary>Last sign of life: max(registered_at, last_heartbeat); the lifecycle's timeout anchor (indexed for the sweep).</summary>
    public DateTime LastSeenAt { get; set; }

    /// <summary>Last registration.</summary>
    public DateTime RegisteredAt { get; set; }

    /// <summary>First registration.</summary>
    public DateTime CreatedAt { get; set; }

    /// <summary>Last write.</summary>
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A row of <c>node_secrets</c>: the node token encrypted by <see cref="NodeSecretProtector"/>.</summary>
public sealed class NodeSecretEntity
{
    /// <summary>Node id (primary key, references nodes).</summary>
    public required string NodeId { get; set; }

    /// <summary>nonce ‖ ciphertext ‖ tag.</summary>
    public required byte[] Ciphertext { get; set; }

    /// <summary>Id of the key that encrypted it.</summary>
    public required string KeyId { get; set; }

    /// <summary>When this token was issued.</summary>
    public DateTime CreatedAt { get; set; }

    /// <summary>The token replaced by the last rotation (nonce ‖ ciphertext ‖ tag), or null.</summary>
    public byte[]? PreviousCiphertext { get; set; }

    /// <summary>Id of the key that encrypted <see cref="PreviousCiphertext"/>.</summary>
    public string? PreviousKeyId { get; set; }

    /// <summary>Until when the previous token verifies (UTC).</summary>
    public DateTime? PreviousValidUntil { get; set; }
}

/// <summary>A row of <c>join_tokens</c> (issue 9). Times are UTC.</summary>
public sealed class JoinTokenEntity
{
    /// <summary>Public id.</summary>
    public required string Id { get; set; }

    /// <summary>Lowercase hex SHA-256 of the secret.</summary>
    public required string SecretSha256 { get; set; }

    /// <summary>Description.</summary>
    public string? Description { get; set; }

    /// <summary>Region constraint.</summary>
    public string? Region { get; set; }

    /// <summary>Expiry.</summary>
    public DateTime ExpiresAt { get; set; }

    /// <summary>Use limit.</summary>
    public int? MaxUses { get; set; }

    /// <summary>Uses so far.</summary>
    public int Uses { get; set; }

    /// <summary>Revocation time.</summary>
    public DateTime? RevokedAt { get; set; }

    /// <summary>Creation time.</summary>
    public DateTime CreatedAt { get; set; }

    /// <summary>The creating user, who owns the nodes it enrolls (issue 12), or null.</summary>
    public string? OwnerId { get; set; }
}

/// <summary>A row of <c>receipts</c> (seed 000).</summary>
public sealed class ReceiptEntity
{
    /// <summary>Receipt id (request id).</summary>
    public required string Id { get; set; }

    /// <summary>Node id.</summary>
    public required string NodeId { get; set; }

    /// <summary>Region.</summary>
    public required string Region { get; set; }

    /// <summary>Model id.</summary>
    public required string ModelId { get; set; }

    /// <summary>Payload (jsonb).</summary>
    public required JsonDocument Payload { get; set; }

    /// <summary>When stored.</summary>
    public DateTime CreatedAt { get; set; }
}

internal sealed class NodeEntityConfiguration : IEntityTypeConfiguration<NodeEntity>
{
    public void Configure(EntityTypeBuilder<NodeEntity> b)
    {
        b.ToTable("nodes");
        b.HasKey(n => n.Id);
        b.Property(n => n.Id).HasColumnName("id");
        b.Property(n => n.Region).HasColumnName("region");
        b.Property(n => n.Runtime).HasColumnName("runtime");
        b.Property(n => n.Status).HasColumnName("status");
        b.Property(n => n.Reputation).HasColumnName("reputation");
        b.Property(n => n.GreenEnergy).HasColumnName("green_energy");
        b.Property(n => n.AsnHint).HasColumnName("asn_hint");
        b.Property(n => n.WalletAddress).HasColumnName("wallet_address");
        b.Property(n => n.PublicKey).HasColumnName("public_key");
        b.Property(n => n.EnrolledWith).HasColumnName("enrolled_with");
        b.Property(n => n.OwnerId).HasColumnName("owner_id");
        b.Property(n => n.Ready).HasColumnName("ready");
        b.Property(n => n.GpuUtil).HasColumnName("gpu_util");
        b.Property(n => n.MemUsedGb).HasColumnName("mem_used_gb");
        b.Property(n => n.P95Ms).HasColumnName("p95_ms");
        b.Property(n => n.LastHeartbeat).HasColumnName("last_heartbeat");
        b.Property(n => n.LastSeenAt).HasColumnName("last_seen_at");
        b.Property(n => n.RegisteredAt).HasColumnName("registered_at");
        b.Property(n => n.CreatedAt).HasColumnName("created_at");
        b.Property(n => n.UpdatedAt).HasColumnName("updated_at");
    }
}

internal sealed class NodeSecretEntityConfiguration : IEntityTypeConfiguration<NodeSecretEntity>
{
    public void Configure(EntityTypeBuilder<NodeSecretEntity> b)
    {
        b.ToTable("node_secrets");
        b.HasKey(s => s.NodeId);
        b.Property(s => s.NodeId).HasColumnName("node_id");
        b.Property(s => s.Ciphertext).HasColumnName("ciphertext");
        b.Property(s => s.KeyId).HasColumnName("key_id");
        b.Property(s => s.CreatedAt).HasColumnName("created_at");
        b.Property(s => s.PreviousCiphertext).HasColumnName("previous_ciphertext");
        b.Property(s => s.PreviousKeyId).HasColumnName("previous_key_id");
        b.Property(s => s.PreviousValidUntil).HasColumnName("previous_valid_until");
        b.HasOne<NodeEntity>().WithOne().HasForeignKey<NodeSecretEntity>(s => s.NodeId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class ReceiptEntityConfiguration : IEntityTypeConfiguration<ReceiptEntity>
{
    public void Configure(EntityTypeBuilder<ReceiptEntity> b)
    {
        b.ToTable("receipts");
        b.HasKey(r => r.Id);
        b.Property(r => r.Id).HasColumnName("id");
        b.Property(r => r.NodeId).HasColumnName("node_id");
        b.Property(r => r.Region).HasColumnName("region");
        b.Property(r => r.ModelId).HasColumnName("model_id");
        b.Property(r => r.Payload).HasColumnName("payload").HasColumnType("jsonb");
        b.Property(r => r.CreatedAt).HasColumnName("created_at");
    }
}

internal sealed class JoinTokenEntityConfiguration : IEntityTypeConfiguration<JoinTokenEntity>
{
    public void Configure(EntityTypeBuilder<JoinTokenEntity> b)
    {
        b.ToTable("join_tokens");
        b.HasKey(t => t.Id);
        b.Property(t => t.Id).HasColumnName("id");
        b.Property(t => t.SecretSha256).HasColumnName("secret_sha256");
        b.Property(t => t.Description).HasColumnName("description");
        b.Property(t => t.Region).HasColumnName("region");
        b.Property(t => t.ExpiresAt).HasColumnName("expires_at");
        b.Property(t => t.MaxUses).HasColumnName("max_uses");
        b.Property(t => t.Uses).HasColumnName("uses");
        b.Property(t => t.RevokedAt).HasColumnName("revoked_at");
        b.Property(t => t.CreatedAt).HasColumnName("created_at");
        b.Property(t => t.OwnerId).HasColumnName("owner_id");
    }
}

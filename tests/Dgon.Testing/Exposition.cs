using System.Globalization;
using System.Text;

namespace Dgon.Testing;

/// <summary>One sample line of a Prometheus text exposition.</summary>
/// <param name="Name">Sample name, e.g. <c>x_bucket</c>.</param>
/// <param name="Labels">Labels (unescaped values).</param>
/// <param name="Value">Value.</param>
public sealed record ExpositionSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A reader of the Prometheus text format (0.0.4) for assertions; checks nothing that promtool checks.</summary>
public sealed class Exposition
{
    private Exposition(IReadOnlyList<ExpositionSample> samples) => Samples = samples;

    /// <summary>Every sample in order.</summary>
    public IReadOnlyList<ExpositionSample> Samples { get; }

    /// <summary>Fetches <c>/metrics</c> from <paramref name="baseAddress"/> and parses it.</summary>
    public static async Task<Exposition> ScrapeAsync(HttpClient client, Uri baseAddress)
    {
        ArgumentNullException.ThrowIfNull(client);
        return Parse(await client.GetStringAsync(new Uri(baseAddress, "/metrics")));
    }

    /// <summary>Parses exposition text.</summary>
    /// <exception cref="FormatException">A sample line is malformed.</exception>
    public static Exposition Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var samples = new List<ExpositionSample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var i = 0;
            while (i < line.Length && line[i] != '{' && line[i] != ' ')
            {
                i++;
            }

            var name = line[..i];
            if (i < line.Length && line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq];
                    i = eq + 2; // past ="
                    var value = new StringBuilder();
                    while (line[i] != '"')
                    {
                        if (line[i] == '\\')
                        {
                            i++;
                            value.Append(line[i] == 'n' ? '\n' : line[i]);
                        }
                        else
                        {
                            value.Append(line[i]);
                        }

                        i++;
                    }

                    labels[key] = value.ToString();
                    i++; // closing quote
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                i++; // }
            }

            var valueText = line[(i + 1)..].Split(' ')[0];
            var number = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new ExpositionSample(name, labels, number));
        }

        return new Exposition(samples);
    }

    /// <summary>Samples named <paramref name="name"/> whose labels include every pair of <paramref name="labels"/>.</summary>
    public IEnumerable<ExpositionSample> Find(string name, params (string Key, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));

    /// <summary>The sum of the matching samples' values (0 when none match: a counter never incremented).</summary>
    public double Sum(string name, params (string Key, string Value)[] labels) => Find(name, labels).Sum(s => s.Value);
}

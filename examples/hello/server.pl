# Answers /health with 200 and everything else with a greeting; listens on $PORT.
use strict;
use warnings;
use IO::Socket::INET;

my $server = IO::Socket::INET->new(
    LocalAddr => "127.0.0.1",
    LocalPort => $ENV{PORT},
    Listen    => 64,
    ReuseAddr => 1,
) or die "cannot listen on port $ENV{PORT}: $!";
$| = 1;
print "listening on $ENV{PORT}\n";
while (my $client = $server->accept) {
    my $request = <$client>;
    next unless defined $request;
    while (my $line = <$client>) { last if $line =~ /^\r?\n$/ }
    my ($path) = $request =~ m{^\S+ (\S+)};
    # GREETING comes from `tovuk env set hello GREETING=...`: config, not code.
    my $body = $path eq "/health" ? "ok\n" : ($ENV{GREETING} // "hello from tovuk") . "\n";
    print "served $path\n" unless $path eq "/health";
    print $client "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($body) . "\r\nConnection: close\r\n\r\n$body";
    close $client;
}

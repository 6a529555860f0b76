// A real Java TLS client for the trust-store tests: a TLS handshake with https://HOST:PORT/
// using the JVM's default trust store (Debian links it to /etc/ssl/certs/java/cacerts) and
// hostname check; exit 0 when the server was trusted, 3 when it was refused.
import java.net.URI;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

public class TlsHandshake {
    public static void main(String[] args) throws Exception {
        URI uri = URI.create(args[0]);
        SSLSocketFactory factory = (SSLSocketFactory) SSLSocketFactory.getDefault();
        try (SSLSocket socket = (SSLSocket) factory.createSocket(uri.getHost(), uri.getPort())) {
            SSLParameters params = socket.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(params);
            socket.startHandshake();
            System.out.println("trusted: " + socket.getSession().getPeerPrincipal());
        } catch (javax.net.ssl.SSLHandshakeException e) {
            System.out.println("refused: " + e.getMessage());
            System.exit(3);
        }
    }
}

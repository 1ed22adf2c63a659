//! The harness itself: a real nats-server starts on a random port, serves
//! JetStream, and comes back on the same port with its data after a restart.

use futures::StreamExt;
use sapha_tests::NatsServer;

#[tokio::test]
async fn nats_server_starts_restarts_and_keeps_jetstream_data() {
    let mut server = NatsServer::start();
    assert_ne!(server.port(), 0);
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "HARNESS".into(),
            subjects: vec!["h.>".into()],
            ..Default::default()
        })
        .await
        .expect("JetStream is enabled");
    js.publish("h.1", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();
    drop(stream);

    let port = server.port();
    server.restart();
    assert_eq!(server.port(), port, "restart keeps the port");

    let client = async_nats::connect(server.url()).await.expect("reconnect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream("HARNESS")
        .await
        .expect("stream survives restart");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.fetch().max_messages(1).messages().await.unwrap();
    let msg = messages.next().await.unwrap().unwrap();
    assert_eq!(&msg.payload[..], b"one");
}
